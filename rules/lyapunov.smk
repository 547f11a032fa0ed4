# Lyapunov analyses: Benettin spectra of every baseline's training map (rebuilt from the
# recorded config and initial weights; a transient, then an accumulated window; resolved or
# flagged with a bound), their link to the measured divergence of each baseline's copies over
# the same window, with intervals across baselines (plus the `tangent_experiment`: an epsilon
# sweep on the same baselines against the Benettin spectra of its first run),
# and the 2-2-1 study of early indicators of failed runs. Settings: the top-level
# `lyapunov:` block of the config (pathdep.config.lyapunov), passed through params:.
localrules:
    lyapunov_link,


rule lyapunov:
    input:
        init="results/{exp}/{run}/init.h5",
        data=get_dataset_file,
        metrics="results/{exp}/{run}/metrics.nc",
    output:
        nc="results/{exp}/{run}/lyapunov.nc",
    params:
        run=get_run,
        spec=get_lyapunov_spec(),
        device=top_setting(config, "device"),
    threads: get_threads()
    resources:
        cpu_threads=get_threads(),
        mem_mb=8000,
        runtime=120,
    log:
        "results/logs/lyapunov/{exp}/{run}.log",
    benchmark:
        "results/benchmarks/lyapunov/{exp}/{run}.tsv"
    conda:
        "../envs/pathdep.yaml"
    script:
        "../workflow_scripts/lyapunov.py"


rule lyapunov_link:
    input:
        spectra=get_lyapunov_files(),
        tangent_metrics=get_lyapunov_tangent_metrics().values(),
    params:
        tangent=get_lyapunov_tangent_params(),
        tangent_runs=list(get_lyapunov_tangent_metrics()),
    output:
        csv=report(
            "results/lyapunov/link.csv",
            caption="../report/lyapunov_link.rst",
            category="Lyapunov",
        ),
        baselines="results/lyapunov/link_baselines.csv",
        link_pdf="results/figures/lyapunov_link.pdf",
        link_png=report(
            "results/figures/lyapunov_link.png",
            caption="../report/lyapunov_link.rst",
            category="Lyapunov",
        ),
        spectrum_pdf="results/figures/lyapunov_spectrum.pdf",
        spectrum_png=report(
            "results/figures/lyapunov_spectrum.png",
            caption="../report/lyapunov_spectrum.rst",
            category="Lyapunov",
        ),
    log:
        "results/logs/lyapunov_link.log",
    conda:
        "../envs/pathdep.yaml"
    script:
        "../workflow_scripts/lyapunov_link.py"


rule lyapunov_study:
    output:
        study="results/lyapunov/study.nc",
        roc="results/lyapunov/roc.nc",
        auc=report(
            "results/lyapunov/study_auc.csv",
            caption="../report/lyapunov_study.rst",
            category="Lyapunov",
        ),
        loss_pdf="results/figures/lyapunov_study_loss.pdf",
        loss_png=report(
            "results/figures/lyapunov_study_loss.png",
            caption="../report/lyapunov_study.rst",
            category="Lyapunov",
        ),
        ftle_pdf="results/figures/lyapunov_study_ftle.pdf",
        ftle_png=report(
            "results/figures/lyapunov_study_ftle.png",
            caption="../report/lyapunov_study.rst",
            category="Lyapunov",
        ),
        clv_pdf="results/figures/lyapunov_study_clv.pdf",
        clv_png=report(
            "results/figures/lyapunov_study_clv.png",
            caption="../report/lyapunov_study.rst",
            category="Lyapunov",
        ),
        roc_pdf="results/figures/lyapunov_study_roc.pdf",
        roc_png=report(
            "results/figures/lyapunov_study_roc.png",
            caption="../report/lyapunov_study.rst",
            category="Lyapunov",
        ),
    params:
        study=get_lyapunov_study_spec(),
    threads: get_threads()
    resources:
        cpu_threads=get_threads(),
        mem_mb=8000,
        runtime=120,
    log:
        "results/logs/lyapunov_study.log",
    benchmark:
        "results/benchmarks/lyapunov_study.tsv"
    conda:
        "../envs/pathdep.yaml"
    script:
        "../workflow_scripts/lyapunov_study.py"
