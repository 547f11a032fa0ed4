localrules:
    plot_experiment,


rule plot_experiment:
    input:
        metrics=get_metrics_files,
    output:
        divergence_pdf="results/figures/{exp}_divergence.pdf",
        divergence_png=report(
            "results/figures/{exp}_divergence.png",
            caption="../report/divergence.rst",
            category="Divergence",
            subcategory="{exp}",
        ),
        loss_pdf="results/figures/{exp}_loss.pdf",
        loss_png=report(
            "results/figures/{exp}_loss.png",
            caption="../report/loss.rst",
            category="Divergence",
            subcategory="{exp}",
        ),
        cf_pdf="results/figures/{exp}_cf.pdf",
        cf_png=report(
            "results/figures/{exp}_cf.png",
            caption="../report/cf.rst",
            category="Divergence",
            subcategory="{exp}",
        ),
    params:
        figures=config.get("figures", {}),
    log:
        "results/logs/plot_experiment/{exp}.log",
    conda:
        "../envs/pathdep.yaml"
    script:
        "../workflow_scripts/plot_experiment.py"
