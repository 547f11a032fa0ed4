localrules:
    plot_experiment,


rule plot_experiment:
    input:
        metrics=get_metrics_files,
    output:
        divergence_pdf="results/figures/{exp}_divergence.pdf",
        divergence_png="results/figures/{exp}_divergence.png",
        loss_pdf="results/figures/{exp}_loss.pdf",
        loss_png="results/figures/{exp}_loss.png",
        cf_pdf="results/figures/{exp}_cf.pdf",
        cf_png="results/figures/{exp}_cf.png",
    params:
        figures=config.get("figures", {}),
    log:
        "results/logs/plot_experiment/{exp}.log",
    conda:
        "../envs/pathdep.yaml"
    script:
        "../workflow_scripts/plot_experiment.py"
