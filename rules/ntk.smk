# Neural tangent kernels (seed ntk-gradient-descent-wide-networks): width sweep
# of kernel/parameter change (4a), network vs linearisation (4b), closed-form MSE dynamics
# vs an ensemble (4c), the catapult learning-rate sweep (4d), each a self-contained job on a
# prepared dataset; and path dependence vs width (4e) from an existing width experiment's
# metrics.nc and geometry.nc (aligned distance, barriers). Settings: the top-level `ntk:` block
# (defaults and section names: pathdep.config.ntk), passed through params:. Each section job
# draws its own figure; path vs width only reads other jobs' files, so it runs locally.

localrules:
    ntk_path_width,


rule ntk_section:
    input:
        data=get_ntk_dataset_file(),
    output:
        nc="results/ntk/{section}.nc",
        pdf="results/figures/ntk_{section}.pdf",
        png=report(
            "results/figures/ntk_{section}.png",
            caption="../report/ntk.rst",
            category="NTK",
        ),
    wildcard_constraints:
        section="|".join(NTK_SECTIONS),
    params:
        spec=get_ntk_spec(),
    threads: get_threads()
    resources:
        cpu_threads=get_threads(),
        mem_mb=4000,
        runtime=60,
    log:
        "results/logs/ntk/{section}.log",
    benchmark:
        "results/benchmarks/ntk/{section}.tsv"
    conda:
        "../envs/pathdep.yaml"
    script:
        "../workflow_scripts/ntk_section.py"


rule ntk_path_width:
    input:
        metrics=get_ntk_path_metrics(),
        geometry=get_ntk_path_geometry(),
    output:
        nc="results/ntk/path_vs_width.nc",
        pdf="results/figures/ntk_path_vs_width.pdf",
        png=report(
            "results/figures/ntk_path_vs_width.png",
            caption="../report/ntk.rst",
            category="NTK",
        ),
    log:
        "results/logs/ntk/path_vs_width.log",
    conda:
        "../envs/pathdep.yaml"
    script:
        "../workflow_scripts/ntk_path_width.py"


# The kernel change between the baseline and its perturbed members over training (4e): the
# empirical NTKs of the width experiment's trajectories at every checkpoint.
rule ntk_kernel_change:
    input:
        trajectories=get_ntk_path_trajectories(),
        data=get_ntk_path_datasets(),
    output:
        nc="results/ntk/kernel_change.nc",
        pdf="results/figures/ntk_kernel_change.pdf",
        png=report(
            "results/figures/ntk_kernel_change.png",
            caption="../report/ntk_kernel_change.rst",
            category="NTK",
        ),
    params:
        spec=get_ntk_spec(),
    threads: get_threads()
    resources:
        cpu_threads=get_threads(),
        mem_mb=2000,
        runtime=30,
    log:
        "results/logs/ntk/kernel_change.log",
    benchmark:
        "results/benchmarks/ntk/kernel_change.tsv"
    conda:
        "../envs/pathdep.yaml"
    script:
        "../workflow_scripts/ntk_kernel_change.py"
