# The geometry of the trajectories: per run geometry.nc (aligned distances, interpolation
# barriers, autocorrelations, hypersphere diffusion) and its figures; the hypersphere theory
# table and figure. Settings: the top-level `geometry:` block (pathdep.config.geometry),
# passed through params:; figure names: pathdep.config.geometry.FIGURES.
from pathdep.config.geometry import FIGURES as GEOMETRY_FIGURES


# the figures and the small sphere simulation (seconds) run on the submitting host
localrules:
    plot_geometry,
    hypersphere_theory,
    plot_hypersphere_theory,


rule geometry:
    input:
        trajectory="results/{exp}/{run}/trajectory.h5",
        data=get_dataset_file,
    output:
        nc="results/{exp}/{run}/geometry.nc",
    params:
        run=get_run,
        geometry=get_geometry_spec,
        device=top_setting(config, "device"),
    threads: get_threads()
    resources:
        cpu_threads=get_threads(),
        mem_mb=4000,
        runtime=60,
    log:
        "results/logs/geometry/{exp}/{run}.log",
    benchmark:
        "results/benchmarks/geometry/{exp}/{run}.tsv"
    conda:
        "../envs/pathdep.yaml"
    script:
        "../workflow_scripts/geometry.py"


rule plot_geometry:
    input:
        geometry=get_geometry_files,
    output:
        **get_figure_outputs(GEOMETRY_FIGURES),
    log:
        "results/logs/plot_geometry/{exp}.log",
    conda:
        "../envs/pathdep.yaml"
    script:
        "../workflow_scripts/plot_geometry.py"


# Brownian motion on spheres against the closed forms: one small simulation (numpy, one thread).
rule hypersphere_theory:
    output:
        nc="results/hypersphere/theory.nc",
    params:
        hypersphere=get_hypersphere_spec(),
    threads: 1
    resources:
        cpu_threads=1,
        mem_mb=2000,
        runtime=30,
    log:
        "results/logs/hypersphere_theory.log",
    benchmark:
        "results/benchmarks/hypersphere_theory.tsv"
    conda:
        "../envs/pathdep.yaml"
    script:
        "../workflow_scripts/hypersphere_theory.py"


rule plot_hypersphere_theory:
    input:
        nc=rules.hypersphere_theory.output.nc,
    output:
        pdf="results/figures/hypersphere_theory.pdf",
        png=report(
            "results/figures/hypersphere_theory.png",
            caption="../report/hypersphere_theory.rst",
            category="Hypersphere",
            subcategory="theory",
        ),
    log:
        "results/logs/plot_hypersphere_theory.log",
    conda:
        "../envs/pathdep.yaml"
    script:
        "../workflow_scripts/plot_hypersphere_theory.py"
