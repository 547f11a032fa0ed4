# The seed's central comparison: how much of the spread of trained networks comes from the
# initial weights, the batch schedule, one hyperparameter, or everything (independent runs).
# Sources: the top-level `spread:` block of the config ({label: "<experiment>/<run>"}).
localrules:
    spread,


rule spread:
    input:
        unpack(get_spread_inputs),
    output:
        nc="results/spread/spread.nc",
        csv=report(
            "results/spread/spread.csv",
            caption="../report/spread.rst",
            category="Spread by source",
        ),
        pdf="results/figures/spread.pdf",
        png=report(
            "results/figures/spread.png",
            caption="../report/spread.rst",
            category="Spread by source",
        ),
    log:
        "results/logs/spread.log",
    conda:
        "../envs/pathdep.yaml"
    script:
        "../workflow_scripts/spread.py"
