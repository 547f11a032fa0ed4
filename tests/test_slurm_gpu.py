"""profiles/slurm: PATHDEP_SLURM_GPU_ANALYSES=1 gives compute_metrics and geometry a GPU (ResNet
studies, config/gpu.yaml), on the GPU partition and model; unset, they stay CPU-only. No cluster
needed (the profile is rendered as `snakemake --profile` renders it)."""

from test_slurm import PROFILE, _per_rule, _profile_env, _render


def test_gpu_analyses_opt_in():
    off = _per_rule(_render(PROFILE, _profile_env(gpu_partition="g", gpu_model="h100")))
    on = _per_rule(_render(PROFILE, _profile_env(gpu_analyses="1", gpu_partition="g", gpu_model="h100")))
    for rule in ("compute_metrics", "geometry"):
        assert off[rule] == {"cpus_per_task": "2"}
        assert on[rule] == {"cpus_per_task": "2", "gpu": "1", "slurm_partition": "g", "gpu_model": "h100"}
    assert on["train_ensemble"] == off["train_ensemble"] and off["train_ensemble"]["gpu"] == "1"
    bare = _per_rule(_render(PROFILE, _profile_env(gpu_analyses="1")))
    assert bare["compute_metrics"] == {"cpus_per_task": "2", "gpu": "1"}
