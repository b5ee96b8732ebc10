//! Names that look like they hold a secret. Build args and `ENV` values are stored in
//! the image (history, config), so such names are refused: use bake `secret` entries.

const SHAPES: &[&str] = &[
    "TOKEN",
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "CREDENTIAL",
    "API_KEY",
    "APIKEY",
    "ACCESS_KEY",
    "PRIVATE_KEY",
];

/// True for names such as `HF_TOKEN`, `db_password`, `AWS_SECRET_ACCESS_KEY`, `SSH_KEY`.
pub fn is_secret_shaped(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SHAPES.iter().any(|s| upper.contains(s)) || upper == "KEY" || upper.ends_with("_KEY")
}

#[cfg(test)]
mod tests {
    use super::is_secret_shaped;

    #[test]
    fn shapes() {
        for yes in [
            "HF_TOKEN",
            "db_password",
            "AWS_SECRET_ACCESS_KEY",
            "SSH_KEY",
            "OPENAI_API_KEY",
            "GITHUB_AUTH_TOKEN",
        ] {
            assert!(is_secret_shaped(yes), "{yes}");
        }
        for no in [
            "BASE_IMAGE",
            "TASK_ID",
            "KEYBOARD_LAYOUT",
            "MONKEYS",
            "DATASET",
            "AUTHOR",
        ] {
            assert!(!is_secret_shaped(no), "{no}");
        }
    }
}
