# Koopman spectra (Redman et al., NeurIPS 2024): the OMD/OGD/bisection validation
# toy, the calibration of the conjugacy test, and per-experiment spectra of recorded
# trajectories (koopman.experiments: the FCN width study and the path-dependence sweeps)
# with W1 distances and permutation tests.
# Settings: the top-level `koopman:` block, passed through params:. Analyses read
# trajectory.h5 files; they never retrain.
localrules:
    plot_koopman_toy,
    plot_koopman_calibration,
    plot_koopman_experiment,
    plot_koopman_windows,


rule koopman_toy:
    output:
        nc="results/koopman/toy.nc",
        csv=report(
            "results/koopman/toy.csv",
            caption="../report/koopman_toy.rst",
            category="Koopman",
        ),
    params:
        spec=get_koopman_toy_spec(),
    log:
        "results/logs/koopman/toy.log",
    benchmark:
        "results/benchmarks/koopman/toy.tsv"
    conda:
        "../envs/pathdep.yaml"
    script:
        "../workflow_scripts/koopman_toy.py"


rule plot_koopman_toy:
    input:
        nc="results/koopman/toy.nc",
    output:
        pdf="results/figures/koopman_toy.pdf",
        png=report(
            "results/figures/koopman_toy.png",
            caption="../report/koopman_toy.rst",
            category="Koopman",
        ),
    log:
        "results/logs/koopman/plot_toy.log",
    conda:
        "../envs/pathdep.yaml"
    script:
        "../workflow_scripts/koopman_plot.py"


# Calibration of the conjugacy test (issue 18: a test that can fail): rejection rate under
# the null (independent seeds of one noisy linear system), power against a shifted
# eigenvalue pair, and the null with copies of one baseline as replicates; settings
# koopman.calibration. ~15-30 s on one core.
rule koopman_calibration:
    output:
        nc="results/koopman/calibration.nc",
        csv=report(
            "results/koopman/calibration.csv",
            caption="../report/koopman_calibration.rst",
            category="Koopman",
        ),
    params:
        spec=get_koopman_calibration_spec(),
    log:
        "results/logs/koopman/calibration.log",
    benchmark:
        "results/benchmarks/koopman/calibration.tsv"
    conda:
        "../envs/pathdep.yaml"
    script:
        "../workflow_scripts/koopman_calibration.py"


rule plot_koopman_calibration:
    input:
        nc="results/koopman/calibration.nc",
    output:
        pdf="results/figures/koopman_calibration.pdf",
        png=report(
            "results/figures/koopman_calibration.png",
            caption="../report/koopman_calibration.rst",
            category="Koopman",
        ),
    log:
        "results/logs/koopman/plot_calibration.log",
    conda:
        "../envs/pathdep.yaml"
    script:
        "../workflow_scripts/koopman_plot.py"


rule koopman_experiment:
    input:
        trajectories=get_koopman_trajectories,
    output:
        nc="results/koopman/{exp}.nc",
        csv=report(
            "results/koopman/{exp}.csv",
            caption="../report/koopman_experiment.rst",
            category="Koopman",
        ),
        # dynamical transitions: best two-block split of the window x window W1 matrix per
        # run (no rows unless koopman.experiments.<exp>.windows is set)
        windows_csv="results/koopman/{exp}_windows.csv",
    params:
        runs=lambda wc: RUNS[wc.exp],
        spec=get_koopman_spec,
    resources:
        mem_mb=4000,
        runtime=30,
    log:
        "results/logs/koopman/{exp}.log",
    benchmark:
        "results/benchmarks/koopman/{exp}.tsv"
    conda:
        "../envs/pathdep.yaml"
    script:
        "../workflow_scripts/koopman_experiment.py"


rule plot_koopman_experiment:
    input:
        nc="results/koopman/{exp}.nc",
    output:
        pdf="results/figures/koopman_{exp}.pdf",
        png=report(
            "results/figures/koopman_{exp}.png",
            caption="../report/koopman_experiment.rst",
            category="Koopman",
        ),
    log:
        "results/logs/koopman/plot_{exp}.log",
    conda:
        "../envs/pathdep.yaml"
    script:
        "../workflow_scripts/koopman_plot.py"


# Heat map of log10 W1 between windows of training (only for experiments whose
# koopman.experiments.<exp> sets `windows`; the LeNet-5 study of Redman et al.).
rule plot_koopman_windows:
    input:
        nc="results/koopman/{exp}.nc",
    output:
        pdf="results/figures/koopman_{exp}_windows.pdf",
        png=report(
            "results/figures/koopman_{exp}_windows.png",
            caption="../report/koopman_experiment.rst",
            category="Koopman",
        ),
    log:
        "results/logs/koopman/plot_{exp}_windows.log",
    conda:
        "../envs/pathdep.yaml"
    script:
        "../workflow_scripts/koopman_plot.py"
