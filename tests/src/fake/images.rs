//! Image generation: Google's image models (`gemini-3.1-flash-image`,
//! listed in `fetchAvailableModels`' `imageGenerationModelIds`) answer with
//! `inlineData` image parts, one image per candidate (`candidateCount`,
//! default 1), a text part first when `responseModalities` asks for TEXT.
//!
//! The image is a small PNG made here whose pixel size is the asked
//! `imageConfig.aspectRatio` scaled so its shorter side is at least 8
//! (`16:9` → 16×9, `1:1` → 8×8), so a test can check the ratio arrived.
//!
//! Sources: the envelope of an image call (`requestType: "image_gen"`,
//! `requestId: "image_gen/<ms>/<uuid>/12"`: CLIProxyAPI
//! `geminiToAntigravity`, GOOGLE-2026 §2); the answer's shape
//! (`candidates[].content.parts[].inlineData{mimeType,data}`:
//! Antigravity-Manager `handlers/openai/images.rs`, gcli2api). The refusal
//! texts below are the fake's own (inferred: Google's exact bodies for these
//! two mistakes are not public), as 400 INVALID_ARGUMENT.

use base64::Engine;
use bytes::Bytes;
use serde_json::{json, Value};

use super::proto::field;

/// Whether `model` is an image model.
pub(crate) fn is_image_model(model: &str) -> bool {
    model.contains("-image")
}

/// Whether the request asks for IMAGE output.
fn asks_images(request: &Value) -> bool {
    modalities(request)
        .iter()
        .any(|m| m.eq_ignore_ascii_case("IMAGE"))
}

fn modalities(request: &Value) -> Vec<String> {
    field(request, "generationConfig")
        .and_then(|g| field(g, "responseModalities"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// What Google refuses about an image call (a 400 INVALID_ARGUMENT
/// message): an image model without the envelope's `image_gen` type, or a
/// model that draws nothing asked for IMAGE output.
pub(crate) fn violation(model: &str, body: &Value) -> Option<String> {
    let request = body.get("request").unwrap_or(&Value::Null);
    if is_image_model(model) {
        let kind = field(body, "requestType");
        if kind.and_then(Value::as_str) != Some("image_gen") {
            return Some(format!(
                "Invalid envelope: requestType must be \"image_gen\" for the image model {model}, got {}.",
                kind.map_or_else(|| "nothing".into(), Value::to_string)
            ));
        }
    } else if asks_images(request) {
        return Some(format!(
            "Model {model} does not support the requested response modalities: image"
        ));
    }
    None
}

/// The `{"response": …}` answer of an image model.
pub(crate) fn answer(model: &str, request: &Value, response_id: &str) -> Value {
    let n = field(request, "generationConfig")
        .and_then(|g| field(g, "candidateCount"))
        .and_then(Value::as_u64)
        .unwrap_or(1)
        .clamp(1, 8);
    let ratio = field(request, "generationConfig")
        .and_then(|g| field(g, "imageConfig"))
        .and_then(|c| field(c, "aspectRatio"))
        .and_then(Value::as_str)
        .unwrap_or("1:1");
    let (w, h) = pixels(ratio);
    let text = modalities(request)
        .iter()
        .any(|m| m.eq_ignore_ascii_case("TEXT"));
    let prompt_words = super::gemini::prompt_words(request).max(1);
    let candidates: Vec<Value> = (0..n)
        .map(|i| {
            let png = png(w, h, i as u8);
            let mut parts = Vec::new();
            if text {
                parts.push(json!({"text": format!("Here is image {}.", i + 1)}));
            }
            parts.push(json!({"inlineData": {"mimeType": "image/png",
                "data": base64::engine::general_purpose::STANDARD.encode(png)}}));
            json!({"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": i})
        })
        .collect();
    // Google counts an image as 1290 output tokens (gemini-2.5-flash-image pricing).
    let out = 1290 * n;
    json!({"response": {
        "candidates": candidates,
        "usageMetadata": {"promptTokenCount": prompt_words, "candidatesTokenCount": out,
                          "totalTokenCount": prompt_words + out},
        "modelVersion": model,
        "responseId": response_id,
    }})
}

/// The answer as one SSE event (an image comes whole).
pub(crate) fn events(answer: &Value) -> Vec<Bytes> {
    vec![Bytes::from(format!("data: {answer}\n\n"))]
}

/// The pixel size for `ratio` (`W:H`): the ratio scaled so the shorter
/// side is at least 8.
fn pixels(ratio: &str) -> (u32, u32) {
    let (w, h) = ratio
        .split_once(':')
        .and_then(|(w, h)| Some((w.trim().parse::<u32>().ok()?, h.trim().parse::<u32>().ok()?)))
        .filter(|(w, h)| (1..=64).contains(w) && (1..=64).contains(h))
        .unwrap_or((1, 1));
    let k = 8u32.div_ceil(w.min(h));
    (w * k, h * k)
}

/// A valid RGB PNG of `w`×`h`, one colour (varied by `shade`), with its
/// zlib stream stored (uncompressed): no encoder needed.
pub(crate) fn png(w: u32, h: u32, shade: u8) -> Vec<u8> {
    let pixel = [200u8.wrapping_sub(shade.wrapping_mul(40)), 60, 120];
    // Each row: filter type 0 (none), then the pixels.
    let row: Vec<u8> = std::iter::once(0)
        .chain(pixel.iter().copied().cycle().take(3 * w as usize))
        .collect();
    let raw = row.repeat(h as usize);
    // zlib: header, stored blocks of at most 65535 bytes, Adler-32.
    let mut z = vec![0x78, 0x01];
    let mut chunks = raw.chunks(65_535).peekable();
    if chunks.peek().is_none() {
        z.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(c) = chunks.next() {
        let last = chunks.peek().is_none();
        let len = c.len() as u16;
        z.push(u8::from(last));
        z.extend_from_slice(&len.to_le_bytes());
        z.extend_from_slice(&(!len).to_le_bytes());
        z.extend_from_slice(c);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &x in &raw {
        a = (a + x as u32) % 65_521;
        b = (b + a) % 65_521;
    }
    z.extend_from_slice(&((b << 16) | a).to_be_bytes());

    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &z);
    chunk(&mut out, b"IEND", &[]);
    out
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = 0xffff_ffffu32;
    for &byte in kind.iter().chain(data) {
        crc ^= byte as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    out.extend_from_slice(&(!crc).to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_png_is_valid() {
        let p = png(16, 9, 0);
        assert!(p.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert_eq!(&p[12..16], b"IHDR");
        assert_eq!(u32::from_be_bytes(p[16..20].try_into().unwrap()), 16);
        assert_eq!(u32::from_be_bytes(p[20..24].try_into().unwrap()), 9);
        // The CRC of IHDR (a known value for this header is not needed:
        // recompute it over type + data).
        let mut again = Vec::new();
        chunk(&mut again, b"IHDR", &p[16..29]);
        assert_eq!(&again[..], &p[8..33]);
        assert!(
            p.ends_with(&[0xae, 0x42, 0x60, 0x82]),
            "IEND's CRC is fixed"
        );
        assert_eq!(pixels("16:9"), (16, 9));
        assert_eq!(pixels("1:1"), (8, 8));
        assert_eq!(pixels("3:4"), (9, 12));
        assert_eq!(pixels("nonsense"), (8, 8));
    }

    #[test]
    fn image_calls_are_checked() {
        let ask = json!({"generationConfig": {"responseModalities": ["IMAGE"]}});
        let env = |t: Option<&str>| {
            let mut b = json!({"request": ask});
            if let Some(t) = t {
                b["requestType"] = json!(t);
            }
            b
        };
        assert!(violation("gemini-3.1-flash-image", &env(Some("image_gen"))).is_none());
        assert!(violation("gemini-3.1-flash-image", &env(Some("agent")))
            .unwrap()
            .contains("image_gen"));
        assert!(violation("gemini-3.1-flash-image", &env(None)).is_some());
        assert!(violation("gemini-2.5-pro", &env(Some("agent")))
            .unwrap()
            .contains("modalities"));
        assert!(violation("gemini-2.5-pro", &json!({"request": {}})).is_none());
        let a = answer(
            "gemini-3.1-flash-image",
            &json!({"generationConfig": {"candidateCount": 2, "responseModalities": ["TEXT", "IMAGE"]}}),
            "r1",
        );
        let c = a["response"]["candidates"].as_array().unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(
            c[0]["content"]["parts"][1]["inlineData"]["mimeType"],
            "image/png"
        );
    }
}
