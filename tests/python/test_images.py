"""Images (`/v1/images/generations`, `/v1/images/edits`) through the
official `openai` client, over the fake's image model, which draws a small
PNG whose pixel size is the aspect ratio asked (16:9 → 16×9, 1:1 → 8×8);
and Gemini's own image output on the Gemini route."""

from __future__ import annotations

import base64
import struct
import time
import zlib

import openai
import pytest

from conftest import PNG_B64, genai_client

IMAGE_MODEL = "gemini-3.1-flash-image"


def png_size(data: bytes) -> tuple[int, int]:
    """A PNG's width and height, after checking its chunks' CRCs and that
    its pixels decompress to the size the header says (RGB, 8-bit)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:16]
    pos, size, idat = 8, None, b""
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]
        (crc,) = struct.unpack(">I", data[pos + 8 + n : pos + 12 + n])
        assert zlib.crc32(kind + body) == crc, kind
        if kind == b"IHDR":
            size = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    assert size is not None
    w, h = size
    assert len(zlib.decompress(idat)) == h * (1 + 3 * w)
    return w, h


def generate_requests(world, n: int) -> list:
    calls = [r for r in world.fake.call("GET", "requests") if r.get("endpoint") in ("generate", "stream")]
    return calls[-n:]


def test_generate_b64_json(oai, world):
    raw = oai.images.with_raw_response.generate(model=IMAGE_MODEL, prompt="a red fox in snow", response_format="b64_json", size="1792x1024")
    assert raw.headers.get("x-grantpool-account") in world.ids.values()
    r = raw.parse()
    assert r.created > 0
    assert len(r.data) == 1
    assert png_size(base64.b64decode(r.data[0].b64_json)) == (16, 9)
    assert r.usage is not None and r.usage.output_tokens > 0
    # Google got an image request: the image_gen envelope, IMAGE output, the mapped config.
    (call,) = generate_requests(world, 1)
    body = call["body"]
    assert body["model"] == IMAGE_MODEL
    assert body["requestType"] == "image_gen"
    assert body["requestId"].startswith("image_gen/") and body["requestId"].endswith("/12")
    gen = body["request"]["generationConfig"]
    assert gen["responseModalities"] == ["IMAGE"]
    assert gen["imageConfig"] == {"aspectRatio": "16:9", "imageSize": "1K"}
    assert body["request"]["contents"][0]["parts"][-1]["text"] == "a red fox in snow"


def test_generate_defaults_and_n(oai):
    # No model, no format: the image model and b64_json.
    r = oai.images.generate(prompt="a lighthouse", n=2, size="1024x1792")
    assert len(r.data) == 2
    for d in r.data:
        assert png_size(base64.b64decode(d.b64_json)) == (9, 16)
    # Antigravity-Manager's suffixes name the ratio.
    r = oai.images.generate(model=IMAGE_MODEL + "-21x9", prompt="a panorama")
    assert png_size(base64.b64decode(r.data[0].b64_json)) == (21, 9)


def test_url_format_is_refused(oai):
    with pytest.raises(openai.BadRequestError) as e:
        oai.images.generate(model=IMAGE_MODEL, prompt="a cat", response_format="url")
    assert e.value.status_code == 400
    msg = str(e.value)
    assert "`url` is not supported" in msg and "b64_json" in msg, msg


def test_bad_requests_say_what_to_do(oai):
    with pytest.raises(openai.BadRequestError) as e:
        oai.images.generate(model=IMAGE_MODEL, prompt="a cat", n=9)
    assert "from 1 to 4" in str(e.value)
    with pytest.raises(openai.BadRequestError) as e:
        oai.images.generate(model=IMAGE_MODEL, prompt="a cat", size="huge")  # type: ignore[arg-type]
    assert "WIDTHxHEIGHT" in str(e.value)
    # A model that draws nothing: Google's refusal, passed on.
    with pytest.raises(openai.BadRequestError) as e:
        oai.images.generate(model="gemini-2.5-flash", prompt="a cat")
    assert "modalities" in str(e.value)


def test_edit(oai, world, tmp_path):
    src = tmp_path / "in.png"
    src.write_bytes(base64.b64decode(PNG_B64))
    with src.open("rb") as f:
        r = oai.images.edit(model=IMAGE_MODEL, image=f, prompt="make it blue", size="1024x1024")
    assert len(r.data) == 1
    assert png_size(base64.b64decode(r.data[0].b64_json)) == (8, 8)
    (call,) = generate_requests(world, 1)
    parts = call["body"]["request"]["contents"][0]["parts"]
    assert parts[0]["inlineData"] == {"mimeType": "image/png", "data": PNG_B64}
    assert parts[1]["text"] == "make it blue"
    assert call["body"]["requestType"] == "image_gen"


def test_edit_with_two_images_and_a_mask(oai, world, tmp_path):
    a, b, m = (tmp_path / n for n in ("a.png", "b.png", "mask.png"))
    for p in (a, b, m):
        p.write_bytes(base64.b64decode(PNG_B64))
    r = oai.images.edit(model=IMAGE_MODEL, image=[a.open("rb"), b.open("rb")], mask=m.open("rb"), prompt="merge them", n=2)
    assert len(r.data) == 2
    calls = generate_requests(world, 2)
    for call in calls:
        parts = call["body"]["request"]["contents"][0]["parts"]
        assert [("inlineData" in p) for p in parts] == [True, True, True, False, False]
        assert parts[3]["text"] == "merge them" and "mask" in parts[4]["text"]


def test_edit_without_image_is_refused(oai):
    with pytest.raises(openai.BadRequestError) as e:
        oai.post("/images/edits", cast_to=object, body={"prompt": "x"}, options={"headers": {"content-type": "application/json"}})
    assert "multipart/form-data" in str(e.value)


def test_image_model_is_listed(oai):
    deadline = time.monotonic() + 10
    while True:
        ids = [m.id for m in oai.models.list()]
        if IMAGE_MODEL in ids or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert IMAGE_MODEL in ids, ids


def test_gemini_route_image_output(world):
    """Gemini's own image output: the `inlineData` parts come back as
    Google sent them (the envelope made an image one)."""
    from google.genai import types

    gem = genai_client(world.url)
    r = gem.models.generate_content(
        model=IMAGE_MODEL,
        contents="a small house",
        config=types.GenerateContentConfig(response_modalities=["TEXT", "IMAGE"], image_config=types.ImageConfig(aspect_ratio="4:3")),
    )
    parts = r.candidates[0].content.parts
    assert parts[0].text
    img = parts[1].inline_data
    assert img.mime_type == "image/png"
    assert png_size(img.data) == (12, 9)
    (call,) = generate_requests(world, 1)
    assert call["body"]["requestType"] == "image_gen"
    # Streamed too.
    chunks = list(gem.models.generate_content_stream(model=IMAGE_MODEL, contents="a tree",
                                                      config=types.GenerateContentConfig(response_modalities=["IMAGE"])))
    datas = [p.inline_data.data for c in chunks for p in c.candidates[0].content.parts if p.inline_data]
    assert len(datas) == 1 and png_size(datas[0]) == (8, 8)


def test_image_quota_is_the_image_models_own(make_world):
    """An account out of image quota rests for the image model only: images
    go to the other account, text still reaches it."""
    from conftest import openai_client

    w = make_world(accounts=2)
    first, other = w.emails
    w.fake.fault(endpoint="generate", kind="rate_limit", email=first, model=IMAGE_MODEL, reason="QUOTA_EXHAUSTED",
                 retry_delay="3600s", times=0)
    client = openai_client(w.url)
    for i in range(3):
        raw = client.images.with_raw_response.generate(model=IMAGE_MODEL, prompt=f"a boat {i}")
        assert raw.headers["x-grantpool-account"] == w.ids[other]
        assert len(raw.parse().data) == 1
    served = set()
    for i in range(4):
        raw = client.chat.completions.with_raw_response.create(model="gemini-2.5-flash", messages=[{"role": "user", "content": f"text {i}"}])
        served.add(raw.headers["x-grantpool-account"])
    assert w.ids[first] in served, served


def test_chat_completions_with_the_image_model(oai):
    """A chat client asking the image model gets the image as Markdown with
    a `data:` URL (a chat message has no other place for it)."""
    r = oai.chat.completions.create(model=IMAGE_MODEL, messages=[{"role": "user", "content": "draw a kite"}])
    content = r.choices[0].message.content
    prefix = "![image](data:image/png;base64,"
    assert content.startswith(prefix) and content.endswith(")"), content[:80]
    assert png_size(base64.b64decode(content[len(prefix):-1])) == (8, 8)
