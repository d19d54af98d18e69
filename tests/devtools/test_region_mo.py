"""region_mo: the МО a region-sized seed shares its patients out over (benchmarks/bench_region.py)."""

from iemk_etl.devtools import demo_data
from iemk_etl.protocol import ogrn


def test_region_mo_starts_with_the_demo_mo_and_adds_distinct_ones():
    mo = demo_data.region_mo(200)
    assert len(mo) == 200
    assert mo[:2] == demo_data.DEMO_MO
    assert len({m[0] for m in mo}) == len({m[1] for m in mo}) == 200
    assert demo_data.region_mo(1) == demo_data.DEMO_MO[:1]


def test_generated_mo_have_contacts_with_a_valid_ogrn():
    for _oid, code, _name, region in demo_data.region_mo(12)[2:]:
        address, phone, number = demo_data._contacts(code, region)
        assert ogrn.is_valid(number, length=13), number
        assert address.region_code == str(region) and phone.startswith("+7")
