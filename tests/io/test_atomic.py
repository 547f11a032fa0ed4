"""pathdep.io.atomic: a failed write leaves the old file and no ``.partial``; netCDF, CSV and
HDF5 round-trip through the one writer; the streaming TrajectoryWriter uses the same
``.partial`` name."""

import h5py
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from pathdep.io.atomic import atomic_write, partial_path, write_csv, write_netcdf, write_text


def test_partial_path_is_a_sibling(tmp_path):
    p = tmp_path / "a" / "metrics.nc"
    assert partial_path(p) == tmp_path / "a" / "metrics.nc.partial"
    assert partial_path(str(p)).parent == p.parent


@pytest.mark.parametrize("kind", ["netcdf", "csv", "h5", "text"])
def test_failing_writer_keeps_old_file_and_leaves_no_partial(tmp_path, kind):
    path = tmp_path / f"out.{kind}"
    path.write_bytes(b"old contents")

    class Boom(RuntimeError):
        pass

    class BadFrame(pd.DataFrame):
        def to_csv(self, *a, **k):  # writes a part, then fails
            open(a[0], "w").write("half,")
            raise Boom("disk full")

    class BadDataset:
        def to_netcdf(self, tmp, engine):
            assert engine == "h5netcdf"
            open(tmp, "wb").write(b"\x89HDF")
            raise Boom("disk full")

    with pytest.raises(Boom):
        if kind == "netcdf":
            write_netcdf(BadDataset(), path)
        elif kind == "csv":
            write_csv(BadFrame({"a": [1]}), path)
        else:
            with atomic_write(path) as tmp:
                if kind == "h5":
                    with h5py.File(tmp, "w") as f:
                        f["x"] = np.arange(3)
                else:
                    tmp.write_text("new")
                raise Boom("interrupted")
    assert path.read_bytes() == b"old contents"
    assert not partial_path(path).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_stale_partial_is_replaced(tmp_path):
    path = tmp_path / "t.txt"
    partial_path(path).write_text("stale from a killed job")
    write_text("fresh", path)
    assert path.read_text() == "fresh" and not partial_path(path).exists()


def test_netcdf_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    ds = xr.Dataset({"dist": (("member", "checkpoint"), rng.normal(size=(3, 5))),
                     "role": ("member", np.array(["baseline", "member", "member"]))},
                    coords={"member": np.arange(3), "step": ("checkpoint", np.array([0, 1, 2, 4, 8]))},
                    attrs={"config": '{"a": 1}', "n_params": 7})
    ds["dist"][1, 2] = np.nan
    path = tmp_path / "sub" / "m.nc"  # parent directory is created
    write_netcdf(ds, path)
    back = xr.load_dataset(path, engine="h5netcdf")
    assert back.identical(ds)
    assert back.attrs["config"] == '{"a": 1}' and int(back.attrs["n_params"]) == 7
    assert not partial_path(path).exists()


def test_csv_round_trip(tmp_path):
    df = pd.DataFrame({"run": ["a", "b"], "x": [0.1, np.nan], "n": [1, 2]})
    write_csv(df, tmp_path / "t.csv")
    back = pd.read_csv(tmp_path / "t.csv")
    pd.testing.assert_frame_equal(back, df)


def test_hdf5_round_trip_and_overwrite(tmp_path):
    path = tmp_path / "w.h5"
    for value in (1.0, 2.0):  # the second write replaces the first as a whole
        with atomic_write(path) as tmp:
            with h5py.File(tmp, "w") as f:
                f["w"] = np.full((2, 3), value)
                f.attrs["v"] = value
            assert not path.exists() or h5py.File(path, "r").attrs["v"] == value - 1.0
        with h5py.File(path, "r") as f:
            assert np.array_equal(f["w"][()], np.full((2, 3), value)) and f.attrs["v"] == value


def test_trajectory_writer_uses_the_same_partial_name(tmp_path):
    from pathdep.io.layout import Layout
    from pathdep.io.trajectory import TrajectoryWriter

    layout = Layout(("w",), ((2,),), (0,))
    path = tmp_path / "trajectory.h5"
    w = TrajectoryWriter(path, layout, [{"role": "baseline"}], np.zeros((1, 1)), np.array([0, 1]), 1, 1,
                         np.float64, {"config": "{}"})
    assert partial_path(path).exists() and not path.exists()
    w.write_weights(0, np.zeros((1, 2)))
    w.write_valid(np.array([[True], [False]]))
    w.finish()
    assert path.exists() and not partial_path(path).exists()
