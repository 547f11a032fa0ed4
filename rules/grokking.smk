# Grokking (issue 20): for each experiment of the `grokking:` block (e.g. a 1-layer transformer on
# modular addition, unconstrained and with its weight norm held fixed), the first steps at
# train 100 % and test 50 % / 90 % of every network (table) and the accuracy/loss curves (figure).
localrules:
    grokking,


rule grokking:
    input:
        metrics=get_metrics_files,
    output:
        csv=report(
            "results/{exp}/grokking.csv",
            caption="../report/grokking.rst",
            category="Grokking",
            subcategory="{exp}",
        ),
        pdf="results/figures/{exp}_grokking.pdf",
        png=report(
            "results/figures/{exp}_grokking.png",
            caption="../report/grokking.rst",
            category="Grokking",
            subcategory="{exp}",
        ),
    log:
        "results/logs/grokking/{exp}.log",
    conda:
        "../envs/pathdep.yaml"
    script:
        "../workflow_scripts/grokking.py"
