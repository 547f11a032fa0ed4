# The claims ledger: every testable claim of the five seeds decided from whatever results the
# config produced (pathdep.stages.claims; statistics and decision rules in
# pathdep.analysis.claims*), and its figure. Both are tables/figures: local rules.
localrules:
    claims,
    plot_claims,


rule claims:
    input:
        get_claims_inputs(),
    output:
        csv=report(
            "results/claims.csv",
            caption="../report/claims.rst",
            category="Claims ledger",
        ),
        md="results/claims.md",
    params:
        config=get_claims_config(),
    log:
        "results/logs/claims.log",
    conda:
        "../envs/pathdep.yaml"
    script:
        "../workflow_scripts/claims.py"


rule plot_claims:
    input:
        csv="results/claims.csv",
    output:
        pdf="results/figures/claims.pdf",
        png=report(
            "results/figures/claims.png",
            caption="../report/claims.rst",
            category="Claims ledger",
        ),
    log:
        "results/logs/plot_claims.log",
    conda:
        "../envs/pathdep.yaml"
    script:
        "../workflow_scripts/plot_claims.py"
