# Fitted forms of the divergence curves: per experiment fits + scaling tables and their
# figures, and one summary table over experiments. Settings: the top-level `fits:` block
# (pathdep.config.fits), passed through params:; figure names: pathdep.config.fits.FIGURES.
# Every experiment gets the fits figure; only experiments with a sweep (two runs or more,
# get_swept_experiments) get the sweep figures (divergence_vs, scaling): one run has no
# hyperparameter axis to draw.
from pathdep.config.fits import FIGURES as FITS_FIGURES, SWEEP_FIGURES


localrules:
    plot_fits,
    plot_scaling,
    summarize_fits,


# curve fitting is scipy on ~40-point curves: one thread is all it can use.
rule fit_experiment:
    input:
        metrics=get_metrics_files,
        geometry=get_geometry_files,
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
        fits=get_fits_spec,
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


rule plot_fits:
    input:
        metrics=get_metrics_files,
        geometry=get_geometry_files,
        fits="results/{exp}/fits.nc",
        scaling="results/{exp}/scaling.csv",
    output:
        **get_figure_outputs({k: v for k, v in FITS_FIGURES.items() if k not in SWEEP_FIGURES}),
    log:
        "results/logs/plot_fits/{exp}.log",
    conda:
        "../envs/pathdep.yaml"
    script:
        "../workflow_scripts/plot_fits.py"


rule plot_scaling:
    input:
        metrics=get_metrics_files,
        geometry=get_geometry_files,
        fits="results/{exp}/fits.nc",
        scaling="results/{exp}/scaling.csv",
    output:
        **get_figure_outputs({k: FITS_FIGURES[k] for k in SWEEP_FIGURES}),
    wildcard_constraints:
        exp="|".join(sorted(get_swept_experiments(), key=len, reverse=True)) or "(?!)",
    log:
        "results/logs/plot_scaling/{exp}.log",
    conda:
        "../envs/pathdep.yaml"
    script:
        "../workflow_scripts/plot_fits.py"


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
