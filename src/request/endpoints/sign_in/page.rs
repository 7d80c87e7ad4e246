//! The pages a person sees: server-rendered HTML, no script, no external asset, and headers
//! that keep them out of frames, caches and other sites' Referer.

use bytes::Bytes;
use http::header::{
    HeaderValue, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use http::{Response, StatusCode};
use http_body_util::Full;

use crate::config::snapshot::SignInSettings;
use crate::Body;

const STYLE: &str = "body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;background:#f4f5f7;color:#1d2129;margin:0}\
main{max-width:22rem;margin:12vh auto;background:#fff;padding:2rem;border-radius:8px;box-shadow:0 1px 4px rgba(0,0,0,.12)}\
h1{font-size:1.35rem;margin:0 0 1.25rem}label{display:block;font-weight:600;margin:.9rem 0 .3rem}\
input{box-sizing:border-box;width:100%;padding:.55rem;border:1px solid #b6bcc6;border-radius:4px;font-size:1rem}\
input:focus,button:focus{outline:3px solid #7aa7ff;outline-offset:1px}\
button{margin-top:1.4rem;width:100%;padding:.6rem;border:0;border-radius:4px;background:#2456c7;color:#fff;font-size:1rem;cursor:pointer}\
.error{background:#fdecec;color:#8a1c1c;padding:.6rem;border-radius:4px}p{line-height:1.4}\
ul.sessions{list-style:none;padding:0}ul.sessions li{border-top:1px solid #e1e4e8;padding:.4rem 0 .8rem}\
ul.sessions button{margin-top:.2rem;background:#9b1c1c}small{color:#59636e;word-break:break-word}\
p.or{text-align:center;color:#59636e;margin:1.2rem 0 .4rem}\
a.provider{display:block;margin-top:.6rem;padding:.6rem;border:1px solid #2456c7;border-radius:4px;color:#2456c7;text-align:center;text-decoration:none}\
a.provider:focus{outline:3px solid #7aa7ff;outline-offset:1px}";

/// Text made safe for HTML element content and double-quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page around `main_html` (already escaped), with its headers.
pub fn html(
    settings: &SignInSettings,
    status: StatusCode,
    heading: &str,
    main_html: &str,
) -> Response<Body> {
    let nonce = crate::token::mint::new_id();
    let title = escape(&settings.title);
    let heading = escape(heading);
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>{heading} · {title}</title><style nonce=\"{nonce}\">{STYLE}</style></head>\
<body><main><h1>{heading}</h1>{main_html}</main></body></html>"
    );
    let mut response = Response::new(Body::Right(Full::new(Bytes::from(page))));
    *response.status_mut() = status;
    let csp = format!("{}{nonce}'", settings.csp_prefix);
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    if let Ok(value) = HeaderValue::from_str(&csp) {
        headers.insert(CONTENT_SECURITY_POLICY, value);
    }
    response
}

/// The sign-in form; `message` is shown above it (a failed attempt); `with_code` adds the
/// one-time code field (second factors configured).
pub fn sign_in_form(
    action: &str,
    rd: &str,
    csrf: &str,
    username: &str,
    message: Option<&str>,
    with_code: bool,
) -> String {
    let message = message
        .map(|m| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(m)))
        .unwrap_or_default();
    format!(
        "{message}<form method=\"post\" action=\"{action}\">\
<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><input type=\"hidden\" name=\"rd\" value=\"{rd}\">\
<label for=\"username\">Username</label>\
<input id=\"username\" name=\"username\" autocomplete=\"username\" autocapitalize=\"none\" required autofocus value=\"{username}\">\
<label for=\"password\">Password</label>\
<input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
{code}<button type=\"submit\">Sign in</button></form>",
        code = if with_code { CODE_FIELD } else { "" },
        action = escape(action),
        csrf = escape(csrf),
        rd = escape(rd),
        username = escape(username),
    )
}

/// The one-time code input: digits, filled in by the platform's one-time-code autofill.
const CODE_FIELD: &str = "<label for=\"otp\">One-time code <small>(if your account has one)</small></label>\
<input id=\"otp\" name=\"otp\" inputmode=\"numeric\" autocomplete=\"one-time-code\" pattern=\"[0-9]{6}\" maxlength=\"6\">";

/// A link per provider (`{prefix}/sign-in/{id}?rd=`), styled as a button; no form, so the
/// page's `form-action` never has to name a provider.
pub fn provider_buttons(prefix: &str, rd: &str, providers: &[(&str, &str)]) -> String {
    if providers.is_empty() {
        return String::new();
    }
    let rd_query = form_urlencoded::Serializer::new(String::new())
        .append_pair("rd", rd)
        .finish();
    let mut out = String::from("<p class=\"or\">or</p>");
    for (id, title) in providers {
        let href = format!("{prefix}/sign-in/{id}?{rd_query}");
        out.push_str(&format!(
            "<a class=\"provider\" href=\"{}\">{}</a>",
            escape(&href),
            escape(title)
        ));
    }
    out
}

/// A short message page body.
pub fn message(text: &str) -> String {
    format!("<p>{}</p>", escape(text))
}

#[cfg(test)]
mod tests {
    use super::{escape, sign_in_form};

    #[test]
    fn markup_in_any_field_is_escaped() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        let form = sign_in_form(
            "/auth/sign-in",
            "\"><script>alert(1)</script>",
            "c",
            "<b>",
            None,
            true,
        );
        assert!(!form.contains("<script>"));
        assert!(!form.contains("<b>"));
        assert!(form.contains("&quot;&gt;&lt;script&gt;"));
    }
}
