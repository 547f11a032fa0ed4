"""Snakemake adapter: the 2-2-1 Lyapunov study, ROC/AUC over time (with Hanley-McNeil errors),
and its figures."""
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w")  # noqa: F821

from pathdep.plots.lyapunov import plot_study  # noqa: E402
from pathdep.stages.lyapunov import lyapunov_study  # noqa: E402

out = snakemake.output  # noqa: F821
study, roc = lyapunov_study(dict(snakemake.params.study), out.study, out.roc, out.auc,  # noqa: F821
                            threads=snakemake.threads)  # noqa: F821
print(study.attrs.get("failure_fraction", ""), "max Hanley-McNeil SE:", roc.attrs["max_auc_se"])
print(roc[["auc", "auc_std", "auc_se"]].to_dataframe().to_string())
caveat = None
if "relu" in list(study["activation"].values):
    caveat = ("ReLU 2-2-1 nets fail on XOR in most runs for every U(-a,a) tried (dead hidden units): "
              "read ReLU AUCs with that class imbalance in mind")
plot_study(study, roc, {"loss": (out.loss_pdf, out.loss_png), "ftle": (out.ftle_pdf, out.ftle_png),
                        "clv": (out.clv_pdf, out.clv_png), "roc": (out.roc_pdf, out.roc_png)}, caveat=caveat)
