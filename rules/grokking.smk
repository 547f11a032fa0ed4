# Grokking (issue 20): for each experiment of the `grokking:` block (e.g. a 1-layer transformer on
# modular addition, unconstrained and with its weight norm held fixed), the first steps at
# train 100 % and test 50 % / 90 % of every network (table) and the accuracy/loss curves (figure).
from pathdep.config import grokking as grokking_config


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


# Koopman spectra over the first steps of the grokking and the norm-constrained transformer
# (grokking.koopman: one spectrum per independent baseline, W1 and a permutation test per
# observable), with the test loss of those steps side by side (the seed's figure).
rule grokking_koopman:
    input:
        trajectories=get_koopman_trajectories,
        metrics=get_metrics_files,
    output:
        nc="results/{exp}/grokking_koopman.nc",
        csv=report(
            "results/{exp}/grokking_koopman.csv",
            caption="../report/grokking_koopman.rst",
            category="Grokking",
            subcategory="{exp}",
        ),
        pdf="results/figures/{exp}_grokking_koopman.pdf",
        png=report(
            "results/figures/{exp}_grokking_koopman.png",
            caption="../report/grokking_koopman.rst",
            category="Grokking",
            subcategory="{exp}",
        ),
    params:
        runs=lambda wc: RUNS[wc.exp],
        spec=lambda wc: grokking_config.koopman_spec(config, RUNS),
    log:
        "results/logs/grokking/koopman_{exp}.log",
    benchmark:
        "results/benchmarks/grokking/koopman_{exp}.tsv"
    conda:
        "../envs/pathdep.yaml"
    script:
        "../workflow_scripts/grokking_koopman.py"


# Path dependence of grokking (grokking.path): per eps run, how far each copy's grokking step
# lies from its own baseline's (interval across baselines), the weight distances through the
# transition and the linear-interpolation barriers before and after grokking (geometry.nc).
rule grokking_path:
    input:
        metrics=get_metrics_files,
        geometry=lambda wc: run_outputs("geometry", [wc.exp]),
    output:
        nc="results/{exp}/grokking_path.nc",
        csv=report(
            "results/{exp}/grokking_path.csv",
            caption="../report/grokking_path.rst",
            category="Grokking",
            subcategory="{exp}",
        ),
        pdf="results/figures/{exp}_grokking_path.pdf",
        png=report(
            "results/figures/{exp}_grokking_path.png",
            caption="../report/grokking_path.rst",
            category="Grokking",
            subcategory="{exp}",
        ),
    params:
        spec=lambda wc: grokking_config.path_spec(config, RUNS),
    log:
        "results/logs/grokking/path_{exp}.log",
    benchmark:
        "results/benchmarks/grokking/path_{exp}.tsv"
    conda:
        "../envs/pathdep.yaml"
    script:
        "../workflow_scripts/grokking_path.py"
