from hypothesis import given
from hypothesis import strategies as st

from retrieval.hashing import content_hash, normalise


def test_form_differences_hash_alike() -> None:
    assert content_hash("Hello   World\n") == content_hash("hello world")
    assert content_hash("ﬁne") == content_hash("fine")  # NFKC folds the ligature
    assert content_hash("Hello world") != content_hash("Hello world!")


def test_hash_is_sha256_of_normalised_text() -> None:
    import hashlib

    assert content_hash(" A  b ") == hashlib.sha256(b"a b").hexdigest()


@given(st.text())
def test_normalise_is_idempotent(text: str) -> None:
    assert normalise(normalise(text)) == normalise(text)
