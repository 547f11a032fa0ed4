"""Snakemake adapter: the 2-2-1 Lyapunov study, ROC/AUC over time, and its figures."""
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w")  # noqa: F821

import torch  # noqa: E402

from pathdep.analysis.lyapunov_study import roc_by_time, run_study  # noqa: E402
from pathdep.io.atomic import write_netcdf  # noqa: E402
from pathdep.plots.lyapunov import plot_study  # noqa: E402

torch.set_num_threads(snakemake.threads)  # noqa: F821


def _plain_attrs(ds):
    """str subclasses in attributes (torch's TorchVersion, np.str_: no HDF5 type in h5netcdf) as plain str."""
    ds.attrs = {k: str(v) if isinstance(v, str) else v for k, v in ds.attrs.items()}
    return ds


out = snakemake.output  # noqa: F821
study = run_study(dict(snakemake.params.study))  # noqa: F821
write_netcdf(_plain_attrs(study), out.study)
roc = roc_by_time(study)
write_netcdf(_plain_attrs(roc), out.roc)
print(study.attrs.get("failure_fraction", ""))
print(roc["auc"].to_dataframe().to_string())
plot_study(study, roc, {"loss": (out.loss_pdf, out.loss_png), "ftle": (out.ftle_pdf, out.ftle_png),
                        "clv": (out.clv_pdf, out.clv_png), "roc": (out.roc_pdf, out.roc_png)})
