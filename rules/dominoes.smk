# Domino experiments (pathdep.data.dominoes, pathdep.stages.dominoes): per-pattern accuracy
# at every checkpoint, sigmoid fits (dominoes_patterns), the toy-model comparison table
# (dominoes_summary), figures (plot_dominoes, drawing only). Experiments whose
# dataset is a `source: dominoes` block get these rules (get_dominoes_experiments).


rule dominoes_patterns:
    input:
        trajectory="results/{exp}/{run}/trajectory.h5",
        data=get_dataset_file,
    output:
        nc="results/{exp}/{run}/patterns.nc",
    params:
        run=get_run,
    threads: get_threads()
    resources:
        cpu_threads=get_threads(),
        mem_mb=4000,
        runtime=60,
    log:
        "results/logs/dominoes_patterns/{exp}/{run}.log",
    conda:
        "../envs/pathdep.yaml"
    script:
        "../workflow_scripts/dominoes_patterns.py"


localrules:
    dominoes_summary,
    plot_dominoes,


rule dominoes_summary:
    input:
        patterns=get_pattern_files,
    output:
        csv="results/{exp}/patterns_summary.csv",
    params:
        toy=lambda wildcards: (config.get("dominoes") or {}).get("toy", {}),
    log:
        "results/logs/dominoes_summary/{exp}.log",
    conda:
        "../envs/pathdep.yaml"
    script:
        "../workflow_scripts/dominoes_summary.py"


rule plot_dominoes:
    input:
        patterns=get_pattern_files,
        csv="results/{exp}/patterns_summary.csv",
    output:
        patterns_pdf="results/figures/{exp}_patterns.pdf",
        patterns_png="results/figures/{exp}_patterns.png",
        onsets_pdf="results/figures/{exp}_onsets.pdf",
        onsets_png="results/figures/{exp}_onsets.png",
    log:
        "results/logs/plot_dominoes/{exp}.log",
    conda:
        "../envs/pathdep.yaml"
    script:
        "../workflow_scripts/dominoes_plot.py"
