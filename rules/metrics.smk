rule compute_metrics:
    input:
        trajectory="results/{exp}/{run}/trajectory.h5",
        data=get_dataset_file,
    output:
        nc="results/{exp}/{run}/metrics.nc",
    params:
        run=get_run,
    threads: get_threads()
    resources:
        cpu_threads=get_threads(),
        mem_mb=4000,
        runtime=60,
    log:
        "results/logs/compute_metrics/{exp}/{run}.log",
    benchmark:
        "results/benchmarks/compute_metrics/{exp}/{run}.tsv"
    conda:
        "../envs/pathdep.yaml"
    script:
        "../workflow_scripts/compute_metrics.py"
