//! The sign-in form's fields, parsed from `application/x-www-form-urlencoded`.

/// The fields the form posts. Debug is not derived: it holds a password.
#[derive(Default)]
pub struct SignInForm {
    /// As typed.
    pub username: String,
    /// As typed.
    pub password: String,
    /// Where to go afterwards, unchecked.
    pub rd: String,
    /// The anti-CSRF value the form carried.
    pub csrf: String,
    /// The session to end (sessions page).
    pub fam: String,
    /// The password to set (password page).
    pub new_password: String,
    /// The same again, as typed a second time.
    pub confirm: String,
    /// The one-time code (sign-in with a second factor).
    pub otp: String,
    /// A TOTP secret being enrolled, sealed for the user (second-factor page).
    pub pending: String,
}

/// Parses the body; a field given twice, or a body that is not UTF-8 form data, is refused.
pub fn parse(body: &[u8]) -> Result<SignInForm, &'static str> {
    if std::str::from_utf8(body).is_err() {
        return Err("the form is not UTF-8");
    }
    let mut form = SignInForm::default();
    let mut seen = [false; 9];
    for (name, value) in form_urlencoded::parse(body) {
        let (slot, field) = match name.as_ref() {
            "username" => (0, &mut form.username),
            "password" => (1, &mut form.password),
            "rd" => (2, &mut form.rd),
            "csrf" => (3, &mut form.csrf),
            "fam" => (4, &mut form.fam),
            "new_password" => (5, &mut form.new_password),
            "confirm" => (6, &mut form.confirm),
            "otp" => (7, &mut form.otp),
            "pending" => (8, &mut form.pending),
            _ => continue,
        };
        if std::mem::replace(&mut seen[slot], true) {
            return Err("a form field appears twice");
        }
        *field = value.into_owned();
    }
    Ok(form)
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn fields_are_decoded_and_duplicates_refused() {
        let form = parse(b"username=al%20ice&password=p%26w+d&rd=%2Fx%3Fy%3D1&csrf=c&extra=1")
            .unwrap_or_default();
        assert_eq!(form.username, "al ice");
        assert_eq!(form.password, "p&w d");
        assert_eq!(form.rd, "/x?y=1");
        assert_eq!(form.csrf, "c");
        assert!(parse(b"username=a&username=b").is_err());
        assert!(parse(b"new_password=a&new_password=b").is_err());
        let change = parse(b"new_password=n%C3%A9w&confirm=x").unwrap_or_default();
        assert_eq!(
            (change.new_password.as_str(), change.confirm.as_str()),
            ("néw", "x")
        );
        assert!(parse(b"username=\xff").is_err());
        assert!(parse(b"").is_ok_and(|f| f.username.is_empty()));
    }
}
