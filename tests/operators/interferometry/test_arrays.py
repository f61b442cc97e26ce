import numpy as np
import pytest

from diffinv.operators.interferometry import Array, Observation


def test_eht2017_stations_and_geometry():
    arr = Array.eht2017()
    assert set(arr.codes) == {"AA", "AP", "AZ", "JC", "LM", "PV", "SM", "SP"}
    radius = np.linalg.norm(arr.positions, axis=1)
    # every station lies on the Earth's surface (6357-6379 km, plus mountain heights)
    assert np.all((radius > 6.35e6) & (radius < 6.39e6))
    # ALMA is the most sensitive station
    assert arr.codes[int(np.argmin(arr.sefds))] == "AA"
    lat, lon = arr.geodetic()
    i = arr.index("SP")
    assert lat[i] == pytest.approx(-np.pi / 2, abs=1e-3)
    # ALMA in the Chajnantor plateau: about 23.0 S, 67.8 W
    j = arr.index("ALMA")
    assert np.degrees(lat[j]) == pytest.approx(-23.03, abs=0.05)
    assert np.degrees(lon[j]) == pytest.approx(-67.75, abs=0.05)


def test_eht2018_adds_glt():
    a17, a18 = Array.eht2017(), Array.eht2018()
    assert set(a18.codes) - set(a17.codes) == {"GL"}
    lat, _ = a18.geodetic()
    assert np.degrees(lat[a18.index("GL")]) == pytest.approx(76.5, abs=0.2)  # Thule


def test_from_table_roundtrip_and_errors(tmp_path):
    p = tmp_path / "arr.csv"
    p.write_text("# comment\ncode,name,x_m,y_m,z_m,sefd_jy\nA1,one,1,2,3,100\nB2,two,4,5,6,\n")
    arr = Array.from_table(p)
    assert arr.codes == ("A1", "B2")
    np.testing.assert_array_equal(arr.positions, [[1, 2, 3], [4, 5, 6]])
    assert arr.sefds[0] == 100 and np.isnan(arr.sefds[1])
    with pytest.raises(FileNotFoundError, match="path"):
        Array.from_table(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("code,x_m,y_m\nA,1,2\n")
    with pytest.raises(ValueError, match="z_m"):
        Array.from_table(bad)
    with pytest.raises(ValueError, match="code"):
        arr.index("ZZ")


def test_later_station_codes_get_their_facility_sefd():
    a18 = Array.eht2018()
    for new, old in (("AX", "AP"), ("MG", "PV"), ("MM", "JC"), ("SW", "SM")):
        assert a18.sefd(new) == a18.sefd(old) > 0
    assert np.isnan(a18.sefd("XX"))


def test_simulation_refuses_stations_without_sefd():
    a = Array.eht2017()
    sefds = a.sefds.copy()
    sefds[a.index("AA")] = np.nan
    bad = Array(a.codes, a.names, a.positions, sefds)
    with pytest.raises(ValueError, match=r"\['AA'\] have no SEFD"):
        Observation.simulate(bad, 187.7, 12.4, "2017-04-05", scan_interval_s=3600.0)
