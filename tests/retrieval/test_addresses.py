import pytest

from retrieval.addresses import AddressError, checksum_address

GOOD = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"


def test_checksums_single_case_input() -> None:
    assert checksum_address(GOOD.lower()) == GOOD
    assert checksum_address(GOOD) == GOOD


@pytest.mark.parametrize("bad", ["", "0x123", "5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "0x" + "g" * 40,
                                 "0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"])
def test_refuses_non_addresses_and_bad_checksums(bad: str) -> None:
    with pytest.raises(AddressError):
        checksum_address(bad)
