# One job per run writes both files: init.h5 (baseline + perturbed initial states, seeds;
# milliseconds of work) and trajectory.h5. A separate init job cost ~5 s of interpreter and
# torch start-up per run, more than the work itself.
rule train_ensemble:
    input:
        data=get_dataset_file,
    output:
        init="results/{exp}/{run}/init.h5",
        h5="results/{exp}/{run}/trajectory.h5",
    params:
        run=get_run,
        device=top_setting(config, "device"),
    threads: get_threads()
    priority: get_train_priority
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
