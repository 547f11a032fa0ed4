# The seed's architecture prediction ("convolutional architectures decrease the rate of
# separation, after correcting for the number of parameters"): the runs of the top-level
# `architecture:` block ({label: "<experiment>/<run>"}, e.g. an MLP, LeNet-5 and a ResNet at
# matched parameter count, differing in the model only; pathdep.config.architecture), their
# early separation rates and late slopes with intervals across baselines, the differences to
# the reference with verdicts (pathdep.stages.architecture), and the figure.
localrules:
    architecture,


rule architecture:
    input:
        unpack(get_architecture_inputs),
    output:
        nc="results/architecture/architecture.nc",
        csv=report(
            "results/architecture/architecture.csv",
            caption="../report/architecture.rst",
            category="Architecture",
        ),
        pdf="results/figures/architecture.pdf",
        png=report(
            "results/figures/architecture.png",
            caption="../report/architecture.rst",
            category="Architecture",
        ),
    params:
        spec=get_architecture_spec(),
    log:
        "results/logs/architecture.log",
    benchmark:
        "results/benchmarks/architecture.tsv"
    conda:
        "../envs/pathdep.yaml"
    script:
        "../workflow_scripts/architecture.py"
