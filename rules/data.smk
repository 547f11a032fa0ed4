rule prepare_dataset:
    output:
        h5="results/data/{dataset}.h5",
    params:
        spec=get_dataset_spec,
        datasets=get_dataset_sides,
    resources:
        mem_mb=4000,
        runtime=30,
    log:
        "results/logs/prepare_dataset/{dataset}.log",
    benchmark:
        "results/benchmarks/prepare_dataset/{dataset}.tsv"
    conda:
        "../envs/pathdep.yaml"
    script:
        "../workflow_scripts/prepare_dataset.py"
