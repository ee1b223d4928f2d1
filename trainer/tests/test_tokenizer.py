"""The BPE tokenizer: lossless on any text, byte lengths that add up."""

import pytest

SAMPLES = [
    "Fellow-Citizens of the Senate and House of Representatives:",
    "Café, naïve, Ångström, façade, señor, Straße",
    "emoji 🙂🚀👩‍👩‍👧 and flags 🇺🇸",
    "中文字符 日本語のテキスト 한국어",
    "control\tchars\r\n\x00\x01\x1b[0m and  double  spaces \n\n trailing ",
    "digits 1234567890 3.14159",
]


@pytest.mark.parametrize("text", SAMPLES)
def test_tokenizer_round_trips_unicode(small_data, text):
    sp = small_data.tokenizer()
    assert sp.decode(sp.encode(text)) == text


@pytest.mark.parametrize("text", SAMPLES)
def test_token_byte_lengths_add_up_to_the_utf8_length(small_data, text):
    sp = small_data.tokenizer()
    assert int(small_data.token_bytes[sp.encode(text)].sum()) == len(text.encode("utf-8"))


def test_bos_is_a_special_token_of_zero_bytes(small_data):
    assert small_data.token_bytes[small_data.bos_id] == 0
    assert (small_data.token_bytes[small_data.token_bytes > 0] >= 1).all()
