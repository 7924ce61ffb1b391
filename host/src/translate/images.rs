//! OpenAI's Images API (`/v1/images/generations`, `/v1/images/edits`) to
//! and from Gemini image generation (pure; no I/O).
//!
//! A request becomes one Gemini request per image asked for (`n` calls:
//! the peers send `candidateCount: 1` to Google's image models and make one
//! call per image — Antigravity-Manager `handlers/openai/images.rs`,
//! gcli2api), asking `responseModalities: ["IMAGE"]` with an `imageConfig`:
//! `size` (`1792x1024`, `16:9`, `auto`) → `aspectRatio`, the nearest ratio
//! Gemini takes, and `imageSize` (`1K`/`2K`/`4K`) from the longer side;
//! `quality` `hd`/`high` → `4K`, `medium` → `2K` (Antigravity-Manager
//! `common_utils.rs` `parse_image_config_with_params`); a model named with
//! Antigravity-Manager's suffixes (`gemini-3.1-flash-image-16x9-4k`) is the
//! bare model with that ratio and size. The answer's `inlineData` parts
//! come back as `b64_json` items.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::shared::TranslateError;

/// The model an images request without `model` goes to (Antigravity's
/// `imageGenerationModelIds`).
pub const DEFAULT_MODEL: &str = "gemini-3.1-flash-image";

/// Most images one request may ask for.
pub const MAX_IMAGES: u32 = 4;

/// Aspect ratios Gemini's `imageConfig.aspectRatio` takes, as (w, h).
const RATIOS: &[(u32, u32)] = &[(1, 1), (2, 3), (3, 2), (3, 4), (4, 3), (4, 5), (5, 4), (9, 16), (16, 9), (21, 9)];

/// What Google is asked to draw.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImageConfig {
    /// `imageConfig.aspectRatio` (`16:9`); `None`: the model's default.
    pub aspect_ratio: Option<String>,
    /// `imageConfig.imageSize` (`1K`, `2K`, `4K`); `None`: the model's default.
    pub image_size: Option<&'static str>,
}

/// An image sent with an edit, as Gemini's `inlineData`.
#[derive(Debug, Clone, PartialEq)]
pub struct InlineImage {
    /// `image/png`, `image/jpeg`, …
    pub mime_type: String,
    /// The bytes, base64 (standard alphabet).
    pub data: String,
}

/// An images request, translated.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageRequest {
    /// The upstream model as the client named it, suffixes taken off.
    pub model: String,
    /// Images to make (one upstream call each).
    pub n: u32,
    /// The Gemini request of one call, serialised.
    pub gemini: Value,
}

/// The fields of an images request, from JSON or from a form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ImageFields {
    /// Model (default [`DEFAULT_MODEL`]).
    pub model: Option<String>,
    /// What to draw (required).
    pub prompt: Option<String>,
    /// How many (1..=[`MAX_IMAGES`]).
    pub n: Option<Value>,
    /// `WIDTHxHEIGHT`, `W:H` or `auto`.
    pub size: Option<String>,
    /// `b64_json` (default); `url` is refused.
    pub response_format: Option<String>,
    /// `standard`, `hd`, `low`, `medium`, `high`, `auto`.
    pub quality: Option<String>,
    /// Accepted and ignored (Gemini has no style switch).
    pub style: Option<String>,
}

/// `POST /v1/images/generations`'s JSON body.
pub fn parse_generation(body: &[u8]) -> Result<ImageRequest, TranslateError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| TranslateError::InvalidJson(e.to_string()))?;
    if !v.is_object() {
        return Err(TranslateError::field("body", "must be a JSON object"));
    }
    let fields: ImageFields = serde_json::from_value(v).map_err(|e| TranslateError::field("body", format!("has a field of the wrong type: {e}")))?;
    translate(fields, Vec::new())
}

/// `POST /v1/images/edits`: the form's fields and its images (`image`,
/// `image[]`, then the `mask` last when given).
pub fn parse_edit(fields: ImageFields, images: Vec<InlineImage>, mask: Option<InlineImage>) -> Result<ImageRequest, TranslateError> {
    if images.is_empty() {
        return Err(TranslateError::field("image", "is required: send the image to edit as a file field `image` (or `image[]`)"));
    }
    let has_mask = mask.is_some();
    let mut req = translate(fields, images.into_iter().chain(mask).collect())?;
    if has_mask {
        // Gemini has no mask parameter: the mask goes as the last image,
        // with words saying what it is.
        if let Some(parts) = req.gemini["contents"][0]["parts"].as_array_mut() {
            parts.push(json!({"text": "The last image is a mask: change only the areas where it is transparent, keep the rest as it is."}));
        }
    }
    Ok(req)
}

fn translate(f: ImageFields, images: Vec<InlineImage>) -> Result<ImageRequest, TranslateError> {
    let prompt = f.prompt.filter(|p| !p.trim().is_empty()).ok_or_else(|| TranslateError::field("prompt", "is required: say what to draw"))?;
    match f.response_format.as_deref() {
        None | Some("b64_json") => {}
        Some("url") => {
            return Err(TranslateError::field(
                "response_format",
                "`url` is not supported: grantpool keeps no files and has nowhere to host the image; ask for `b64_json` (the default) and decode `data[].b64_json`",
            ))
        }
        Some(other) => return Err(TranslateError::field("response_format", format!("`{other}` is not a format: use `b64_json`"))),
    }
    let n = match &f.n {
        None | Some(Value::Null) => 1,
        Some(v) => v
            .as_u64()
            .filter(|n| (1..=MAX_IMAGES as u64).contains(n))
            .ok_or_else(|| TranslateError::field("n", format!("must be a whole number from 1 to {MAX_IMAGES}, got {v}")))? as u32,
    };
    let named = f.model.filter(|m| !m.is_empty()).unwrap_or_else(|| DEFAULT_MODEL.to_string());
    let (model, mut config) = model_suffixes(&named);
    if let Some(size) = f.size.as_deref() {
        let from_size = size_config(size)?;
        config.aspect_ratio = from_size.aspect_ratio.or(config.aspect_ratio);
        config.image_size = from_size.image_size.or(config.image_size);
    }
    config.image_size = larger(config.image_size, quality_size(f.quality.as_deref()));
    let mut parts: Vec<Value> = images.into_iter().map(|i| json!({"inlineData": {"mimeType": i.mime_type, "data": i.data}})).collect();
    parts.push(json!({"text": prompt}));
    let mut image_config = Map::new();
    if let Some(r) = &config.aspect_ratio {
        image_config.insert("aspectRatio".into(), r.clone().into());
    }
    if let Some(s) = config.image_size {
        image_config.insert("imageSize".into(), s.into());
    }
    let mut generation = json!({"responseModalities": ["IMAGE"], "candidateCount": 1});
    if !image_config.is_empty() {
        generation["imageConfig"] = Value::Object(image_config);
    }
    let gemini = json!({"contents": [{"role": "user", "parts": parts}], "generationConfig": generation});
    Ok(ImageRequest { model, n, gemini })
}

/// A model named with Antigravity-Manager's suffixes (`-16x9`, `-4k`), as
/// the bare model and what the suffixes ask.
pub fn model_suffixes(model: &str) -> (String, ImageConfig) {
    let mut config = ImageConfig::default();
    let mut rest = model;
    while let Some((head, last)) = rest.rsplit_once('-') {
        let lower = last.to_ascii_lowercase();
        if let Some(size) = ["1k", "2k", "4k"].iter().position(|s| *s == lower).map(|i| ["1K", "2K", "4K"][i]) {
            config.image_size.get_or_insert(size);
        } else if let Some(r) = lower.split_once('x').and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?))).filter(|r| RATIOS.contains(r)) {
            config.aspect_ratio.get_or_insert(format!("{}:{}", r.0, r.1));
        } else {
            break;
        }
        rest = head;
    }
    (rest.to_string(), config)
}

/// OpenAI's `size` as Gemini's `imageConfig`: `auto` says nothing;
/// `WxH` the nearest ratio Gemini takes and the size class of its longer
/// side; `W:H` a ratio as it is (one Gemini takes).
pub fn size_config(size: &str) -> Result<ImageConfig, TranslateError> {
    let s = size.trim().to_ascii_lowercase();
    if s.is_empty() || s == "auto" {
        return Ok(ImageConfig::default());
    }
    let bad = || {
        TranslateError::field(
            "size",
            format!("`{size}` is not a size: use `auto`, WIDTHxHEIGHT (`1024x1024`, `1792x1024`, `1024x1792`) or a ratio Gemini takes ({})", ratio_list()),
        )
    };
    if let Some((w, h)) = s.split_once(':') {
        let r = (w.parse::<u32>().map_err(|_| bad())?, h.parse::<u32>().map_err(|_| bad())?);
        if !RATIOS.contains(&r) {
            return Err(bad());
        }
        return Ok(ImageConfig { aspect_ratio: Some(format!("{}:{}", r.0, r.1)), image_size: None });
    }
    let (w, h) = s.split_once('x').ok_or_else(bad)?;
    let (w, h) = (w.parse::<u32>().map_err(|_| bad())?, h.parse::<u32>().map_err(|_| bad())?);
    if w == 0 || h == 0 {
        return Err(bad());
    }
    let want = (w as f64 / h as f64).ln();
    let nearest = RATIOS
        .iter()
        .min_by(|a, b| {
            let d = |r: &&(u32, u32)| ((r.0 as f64 / r.1 as f64).ln() - want).abs();
            d(a).total_cmp(&d(b))
        })
        .copied()
        .unwrap_or((1, 1));
    // OpenAI's own sizes (up to 1792) are Gemini's 1K; beyond, 2K then 4K.
    let longer = w.max(h);
    let image_size = match longer {
        0..=1792 => "1K",
        1793..=2816 => "2K",
        _ => "4K",
    };
    Ok(ImageConfig { aspect_ratio: Some(format!("{}:{}", nearest.0, nearest.1)), image_size: Some(image_size) })
}

fn ratio_list() -> String {
    RATIOS.iter().map(|(w, h)| format!("{w}:{h}")).collect::<Vec<_>>().join(", ")
}

/// `quality` as a size class: `hd`/`high` 4K, `medium` 2K; the others
/// (`standard`, `low`, `auto`) leave it to `size`.
fn quality_size(quality: Option<&str>) -> Option<&'static str> {
    match quality?.to_ascii_lowercase().as_str() {
        "hd" | "high" => Some("4K"),
        "medium" => Some("2K"),
        _ => None,
    }
}

fn larger(a: Option<&'static str>, b: Option<&'static str>) -> Option<&'static str> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b > a { b } else { a }),
        (a, b) => a.or(b),
    }
}

/// One image of an answer.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratedImage {
    /// The image, base64.
    pub b64: String,
    /// Its type (`image/png`).
    pub mime_type: String,
}

/// What one upstream answer gave.
#[derive(Debug, Default, PartialEq)]
pub struct ImageAnswer {
    /// Its images, in order.
    pub images: Vec<GeneratedImage>,
    /// Text parts (Gemini may say why it drew nothing).
    pub text: String,
    /// The first candidate's finish reason.
    pub finish_reason: Option<String>,
    /// `promptTokenCount`.
    pub prompt_tokens: u64,
    /// `candidatesTokenCount`.
    pub output_tokens: u64,
}

#[derive(Deserialize)]
struct Wire {
    response: Option<Box<Wire>>,
    #[serde(default)]
    candidates: Vec<WireCandidate>,
    #[serde(rename = "usageMetadata")]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct WireCandidate {
    content: Option<WireContent>,
    #[serde(rename = "finishReason")]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct WireContent {
    #[serde(default)]
    parts: Vec<WirePart>,
}

#[derive(Deserialize)]
struct WirePart {
    text: Option<String>,
    #[serde(default)]
    thought: bool,
    #[serde(rename = "inlineData", alias = "inline_data")]
    inline: Option<WireInline>,
}

#[derive(Deserialize)]
struct WireInline {
    #[serde(rename = "mimeType", alias = "mime_type")]
    mime_type: Option<String>,
    data: Option<String>,
}

#[derive(Deserialize)]
struct WireUsage {
    #[serde(rename = "promptTokenCount", default)]
    prompt: u64,
    #[serde(rename = "candidatesTokenCount", default)]
    candidates: u64,
}

/// The images of a `generateContent` answer (with or without the
/// `v1internal` `response` envelope); thought parts are left out.
pub fn parse_answer(body: &[u8]) -> Result<ImageAnswer, String> {
    let wire: Wire = serde_json::from_slice(body).map_err(|e| format!("upstream answer is not a Gemini response: {e}"))?;
    let wire = match wire.response {
        Some(inner) => *inner,
        None => wire,
    };
    let mut out = ImageAnswer { finish_reason: wire.candidates.first().and_then(|c| c.finish_reason.clone()), ..Default::default() };
    for part in wire.candidates.into_iter().filter_map(|c| c.content).flat_map(|c| c.parts).filter(|p| !p.thought) {
        if let Some(inline) = part.inline {
            if let Some(data) = inline.data.filter(|d| !d.is_empty()) {
                out.images.push(GeneratedImage { b64: data, mime_type: inline.mime_type.unwrap_or_else(|| "image/png".into()) });
            }
        } else if let Some(t) = part.text {
            out.text.push_str(&t);
        }
    }
    if let Some(u) = wire.usage {
        (out.prompt_tokens, out.output_tokens) = (u.prompt, u.candidates);
    }
    Ok(out)
}

/// Why an answer held no image, in words for the client (the status: 400
/// when Google declined the prompt, else 502).
pub fn no_image(answer: &ImageAnswer) -> (u16, String) {
    let reason = answer.finish_reason.as_deref().unwrap_or("none given");
    let said = if answer.text.is_empty() { String::new() } else { format!("; the model said: {}", answer.text.trim()) };
    let declined = ["SAFETY", "PROHIBITED", "BLOCKLIST", "RECITATION", "IMAGE_OTHER", "NO_IMAGE"].iter().any(|k| reason.contains(k));
    if declined {
        (400, format!("Google declined to draw this prompt (finishReason {reason}){said}; change the prompt and try again"))
    } else {
        (502, format!("Google's answer held no image (finishReason {reason}){said}"))
    }
}

/// OpenAI's images answer: `created`, `data[].b64_json`, and `usage`
/// summed over the calls.
pub fn response(created: u64, answers: &[ImageAnswer]) -> Value {
    let data: Vec<Value> = answers.iter().flat_map(|a| &a.images).map(|i| json!({"b64_json": i.b64})).collect();
    let (input, output) = answers.iter().fold((0, 0), |(i, o), a| (i + a.prompt_tokens, o + a.output_tokens));
    let format = answers.iter().flat_map(|a| &a.images).next().and_then(|i| i.mime_type.strip_prefix("image/")).unwrap_or("png").to_string();
    json!({
        "created": created,
        "data": data,
        "output_format": format,
        "usage": {"input_tokens": input, "output_tokens": output, "total_tokens": input + output,
                  "input_tokens_details": {"text_tokens": input, "image_tokens": 0}},
    })
}

/// The type of an image from its first bytes (PNG, JPEG, WebP, GIF).
pub fn sniff_mime(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        Some("image/jpeg")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("image/gif")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gen(v: Value) -> Result<ImageRequest, TranslateError> {
        parse_generation(&serde_json::to_vec(&v).unwrap())
    }

    #[test]
    fn sizes_map_to_ratios_and_size_classes() {
        let c = |s: &str| size_config(s).unwrap();
        let both = |r: &str, s: &'static str| ImageConfig { aspect_ratio: Some(r.into()), image_size: Some(s) };
        assert_eq!(c("1024x1024"), both("1:1", "1K"));
        assert_eq!(c("1792x1024"), both("16:9", "1K"));
        assert_eq!(c("1024x1792"), both("9:16", "1K"));
        assert_eq!(c("1536x1024"), both("3:2", "1K"));
        assert_eq!(c("1024x1536"), both("2:3", "1K"));
        assert_eq!(c("512x512"), both("1:1", "1K"));
        assert_eq!(c("2048x2048"), both("1:1", "2K"));
        assert_eq!(c("3840x2160"), both("16:9", "4K"));
        assert_eq!(c("2520x1080"), both("21:9", "2K"));
        assert_eq!(c("1280x1024"), both("5:4", "1K"));
        assert_eq!(c("auto"), ImageConfig::default());
        assert_eq!(c("16:9"), ImageConfig { aspect_ratio: Some("16:9".into()), image_size: None });
        for bad in ["big", "1024", "0x1024", "x", "7:5", "1024x-1"] {
            let e = size_config(bad).unwrap_err().to_string();
            assert!(e.contains("`size`") && e.contains("WIDTHxHEIGHT"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_generation_is_one_gemini_image_request() {
        let r = gen(json!({"prompt": "a red fox", "size": "1792x1024", "n": 2, "quality": "hd", "style": "vivid"})).unwrap();
        assert_eq!(r.model, DEFAULT_MODEL);
        assert_eq!(r.n, 2);
        assert_eq!(
            r.gemini,
            json!({"contents": [{"role": "user", "parts": [{"text": "a red fox"}]}],
                   "generationConfig": {"responseModalities": ["IMAGE"], "candidateCount": 1,
                                        "imageConfig": {"aspectRatio": "16:9", "imageSize": "4K"}}})
        );
        // No size: the model's defaults, no imageConfig at all.
        let r = gen(json!({"prompt": "x", "model": "gemini-3-pro-image", "response_format": "b64_json"})).unwrap();
        assert_eq!(r.model, "gemini-3-pro-image");
        assert!(r.gemini["generationConfig"].get("imageConfig").is_none());
        assert_eq!(gen(json!({"prompt": "x", "quality": "medium"})).unwrap().gemini["generationConfig"]["imageConfig"], json!({"imageSize": "2K"}));
    }

    #[test]
    fn model_suffixes_set_ratio_and_size() {
        let (m, c) = model_suffixes("gemini-3.1-flash-image-16x9-4k");
        assert_eq!(m, "gemini-3.1-flash-image");
        assert_eq!(c, ImageConfig { aspect_ratio: Some("16:9".into()), image_size: Some("4K") });
        assert_eq!(model_suffixes("gemini-3.1-flash-image"), ("gemini-3.1-flash-image".into(), ImageConfig::default()));
        // `size` wins over a suffix.
        let r = gen(json!({"prompt": "x", "model": "gemini-3.1-flash-image-9x16", "size": "1024x1024"})).unwrap();
        assert_eq!(r.gemini["generationConfig"]["imageConfig"]["aspectRatio"], "1:1");
        let r = gen(json!({"prompt": "x", "model": "gemini-3.1-flash-image-2k"})).unwrap();
        assert_eq!(r.gemini["generationConfig"]["imageConfig"], json!({"imageSize": "2K"}));
    }

    #[test]
    fn refusals_say_what_to_do() {
        let msg = |v: Value| gen(v).unwrap_err().to_string();
        let url = msg(json!({"prompt": "x", "response_format": "url"}));
        assert!(url.contains("`url` is not supported") && url.contains("b64_json"), "{url}");
        assert!(msg(json!({"prompt": "x", "response_format": "png"})).contains("use `b64_json`"));
        assert!(msg(json!({"n": 1})).contains("`prompt` is required"));
        assert!(msg(json!({"prompt": "  "})).contains("`prompt` is required"));
        assert!(msg(json!({"prompt": "x", "n": 5})).contains("from 1 to 4"));
        assert!(msg(json!({"prompt": "x", "n": 0})).contains("from 1 to 4"));
        assert!(msg(json!({"prompt": "x", "n": "2"})).contains("from 1 to 4"));
        assert!(msg(json!({"prompt": "x", "size": "huge"})).contains("`size`"));
        assert!(parse_generation(b"[1]").is_err());
        assert!(parse_generation(b"{").is_err());
        let e = parse_edit(ImageFields { prompt: Some("x".into()), ..Default::default() }, vec![], None).unwrap_err().to_string();
        assert!(e.contains("`image` is required"), "{e}");
    }

    #[test]
    fn an_edit_sends_the_images_then_the_prompt() {
        let img = |m: &str, d: &str| InlineImage { mime_type: m.into(), data: d.into() };
        let f = ImageFields { prompt: Some("make it blue".into()), size: Some("1024x1024".into()), ..Default::default() };
        let r = parse_edit(f, vec![img("image/png", "AAAA"), img("image/jpeg", "BBBB")], Some(img("image/png", "CCCC"))).unwrap();
        let parts = r.gemini["contents"][0]["parts"].as_array().unwrap();
        assert_eq!(parts.len(), 5);
        assert_eq!(parts[0]["inlineData"], json!({"mimeType": "image/png", "data": "AAAA"}));
        assert_eq!(parts[1]["inlineData"]["mimeType"], "image/jpeg");
        assert_eq!(parts[2]["inlineData"]["data"], "CCCC");
        assert_eq!(parts[3]["text"], "make it blue");
        assert!(parts[4]["text"].as_str().unwrap().contains("mask"));
    }

    #[test]
    fn answers_become_b64_items() {
        let body = json!({"response": {"candidates": [{"content": {"role": "model", "parts": [
            {"text": "thinking", "thought": true}, {"text": "Here it is."},
            {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}]}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 1290}}});
        let a = parse_answer(&serde_json::to_vec(&body).unwrap()).unwrap();
        assert_eq!(a.images, vec![GeneratedImage { b64: "iVBORw0KGgo=".into(), mime_type: "image/png".into() }]);
        assert_eq!(a.text, "Here it is.");
        let r = response(7, &[a]);
        assert_eq!(r["created"], 7);
        assert_eq!(r["data"], json!([{"b64_json": "iVBORw0KGgo="}]));
        assert_eq!(r["usage"]["total_tokens"], 1295);
        assert_eq!(r["output_format"], "png");
        // Declined: a 400 that says so; nothing at all: a 502.
        let declined = parse_answer(br#"{"candidates": [{"finishReason": "IMAGE_SAFETY"}]}"#).unwrap();
        assert_eq!(no_image(&declined).0, 400);
        let empty = parse_answer(br#"{"candidates": [{"content": {"parts": [{"text": "no"}]}, "finishReason": "STOP"}]}"#).unwrap();
        let (status, msg) = no_image(&empty);
        assert_eq!(status, 502);
        assert!(msg.contains("the model said: no"), "{msg}");
    }

    #[test]
    fn image_types_are_sniffed() {
        assert_eq!(sniff_mime(b"\x89PNG\r\n\x1a\nrest"), Some("image/png"));
        assert_eq!(sniff_mime(&[0xff, 0xd8, 0xff, 0xe0]), Some("image/jpeg"));
        assert_eq!(sniff_mime(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(sniff_mime(b"hello"), None);
    }
}
