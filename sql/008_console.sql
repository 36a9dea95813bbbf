-- The web console: the GitHub App registered through /setup, and the one-time set-up tokens.

-- The App PAO registered with the manifest flow (one row). Secrets are encrypted with a
-- key derived from PAO_SECRET_KEY (Fernet: AES-128-CBC + HMAC-SHA256); the database
-- alone does not reveal them. PAO_APP_ID / PAO_PRIVATE_KEY, when set, take precedence.
CREATE TABLE github_app_registration (
    singleton              boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    app_id                 bigint NOT NULL,
    slug                   text NOT NULL,
    html_url               text NOT NULL,
    client_id              text NOT NULL,
    private_key_encrypted  text NOT NULL,
    webhook_secret_encrypted text,
    client_secret_encrypted text NOT NULL,
    registered_at          timestamptz NOT NULL DEFAULT now()
);

-- Set-up tokens printed at start while no App is registered; only their SHA-256 is
-- kept. Each works once; all are dropped when the set-up completes.
CREATE TABLE console_setup_tokens (
    token_hash text PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now()
);
