rule init_ensemble:
    input:
        data=get_dataset_file,
    output:
        h5="results/{exp}/{run}/init.h5",
    params:
        run=get_run,
    resources:
        mem_mb=2000,
        runtime=15,
    log:
        "results/logs/init_ensemble/{exp}/{run}.log",
    conda:
        "../envs/pathdep.yaml"
    script:
        "../workflow_scripts/init_ensemble.py"


rule train_ensemble:
    input:
        init="results/{exp}/{run}/init.h5",
        data=get_dataset_file,
    output:
        h5="results/{exp}/{run}/trajectory.h5",
    params:
        run=get_run,
        device=config.get("device", "auto"),
    threads: get_threads()
    resources:
        cpu_threads=get_threads(),
        mem_mb=8000,
        runtime=240,
    log:
        "results/logs/train_ensemble/{exp}/{run}.log",
    benchmark:
        "results/benchmarks/train_ensemble/{exp}/{run}.tsv"
    conda:
        "../envs/pathdep.yaml"
    script:
        "../workflow_scripts/train_ensemble.py"
