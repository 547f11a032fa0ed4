# Analyses (issue 3): per run analysis.nc (aligned distances, interpolation barriers,
# autocorrelations, hypersphere diffusion), per experiment fits + scaling tables, their
# figures, the hypersphere theory figure and one summary table. Settings: the top-level
# `analysis:` block of the config (pathdep.config.analysis.DEFAULTS), passed through params:.
localrules:
    plot_analysis,
    plot_hypersphere_theory,
    summarize_fits,


rule analyze_run:
    input:
        trajectory="results/{exp}/{run}/trajectory.h5",
        data=get_dataset_file,
    output:
        nc="results/{exp}/{run}/analysis.nc",
    params:
        run=get_run,
        analysis=get_analysis_spec,
        device=config.get("device", "auto"),
    threads: get_threads()
    resources:
        cpu_threads=get_threads(),
        mem_mb=4000,
        runtime=60,
    log:
        "results/logs/analyze_run/{exp}/{run}.log",
    benchmark:
        "results/benchmarks/analyze_run/{exp}/{run}.tsv"
    conda:
        "../envs/pathdep.yaml"
    script:
        "../workflow_scripts/analyze_run.py"


# curve fitting is scipy on ~40-point curves: one thread is all it can use.
rule fit_experiment:
    input:
        metrics=get_metrics_files,
        analysis=get_analysis_files,
    output:
        fits_nc="results/{exp}/fits.nc",
        fits_csv="results/{exp}/fits.csv",
        scaling_nc="results/{exp}/scaling.nc",
        scaling_csv=report(
            "results/{exp}/scaling.csv",
            caption="../report/scaling_table.rst",
            category="Tables",
            subcategory="{exp}",
        ),
    params:
        analysis=get_analysis_spec,
    threads: 1
    resources:
        cpu_threads=1,
        mem_mb=2000,
        runtime=30,
    log:
        "results/logs/fit_experiment/{exp}.log",
    benchmark:
        "results/benchmarks/fit_experiment/{exp}.tsv"
    conda:
        "../envs/pathdep.yaml"
    script:
        "../workflow_scripts/fit_experiment.py"


rule plot_analysis:
    input:
        metrics=get_metrics_files,
        analysis=get_analysis_files,
        fits="results/{exp}/fits.nc",
        scaling="results/{exp}/scaling.csv",
    output:
        aligned_pdf="results/figures/{exp}_aligned.pdf",
        aligned_png=report(
            "results/figures/{exp}_aligned.png",
            caption="../report/aligned.rst",
            category="Aligned distance",
            subcategory="{exp}",
        ),
        interpolation_pdf="results/figures/{exp}_interpolation.pdf",
        interpolation_png=report(
            "results/figures/{exp}_interpolation.png",
            caption="../report/interpolation.rst",
            category="Interpolation",
            subcategory="{exp}",
        ),
        barriers_pdf="results/figures/{exp}_barriers.pdf",
        barriers_png=report(
            "results/figures/{exp}_barriers.png",
            caption="../report/barriers.rst",
            category="Interpolation",
            subcategory="{exp}",
        ),
        autocorr_pdf="results/figures/{exp}_autocorr.pdf",
        autocorr_png=report(
            "results/figures/{exp}_autocorr.png",
            caption="../report/autocorr.rst",
            category="Autocorrelation",
            subcategory="{exp}",
        ),
        fits_pdf="results/figures/{exp}_fits.pdf",
        fits_png=report(
            "results/figures/{exp}_fits.png",
            caption="../report/fits.rst",
            category="Fitted forms",
            subcategory="{exp}",
        ),
        hypersphere_pdf="results/figures/{exp}_hypersphere.pdf",
        hypersphere_png=report(
            "results/figures/{exp}_hypersphere.png",
            caption="../report/hypersphere.rst",
            category="Hypersphere",
            subcategory="{exp}",
        ),
        divergence_vs_pdf="results/figures/divergence_vs_{exp}.pdf",
        divergence_vs_png=report(
            "results/figures/divergence_vs_{exp}.png",
            caption="../report/divergence_vs.rst",
            category="Divergence vs hyperparameter",
            subcategory="{exp}",
        ),
        scaling_pdf="results/figures/scaling_{exp}.pdf",
        scaling_png=report(
            "results/figures/scaling_{exp}.png",
            caption="../report/scaling.rst",
            category="Scaling laws",
            subcategory="{exp}",
        ),
    log:
        "results/logs/plot_analysis/{exp}.log",
    conda:
        "../envs/pathdep.yaml"
    script:
        "../workflow_scripts/plot_analysis.py"


rule plot_hypersphere_theory:
    output:
        pdf="results/figures/hypersphere_theory.pdf",
        png=report(
            "results/figures/hypersphere_theory.png",
            caption="../report/hypersphere_theory.rst",
            category="Hypersphere",
            subcategory="theory",
        ),
    params:
        hypersphere=config.get("analysis", {}).get("hypersphere", {}),
    log:
        "results/logs/plot_hypersphere_theory.log",
    conda:
        "../envs/pathdep.yaml"
    script:
        "../workflow_scripts/plot_hypersphere_theory.py"


rule summarize_fits:
    input:
        scaling=expand(rules.fit_experiment.output.scaling_csv, exp=get_standard_experiments()),
        fits=expand(rules.fit_experiment.output.fits_csv, exp=get_standard_experiments()),
    output:
        csv=report(
            "results/fits_summary.csv",
            caption="../report/fits_summary.rst",
            category="Tables",
            subcategory="summary",
        ),
    log:
        "results/logs/summarize_fits.log",
    conda:
        "../envs/pathdep.yaml"
    script:
        "../workflow_scripts/summarize_fits.py"
