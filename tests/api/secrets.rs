//! Secrets from Secrets Manager (the emulator), read as the functions read them at cold
//! start, and the access-token key rotating through the secret's versions without
//! logging anyone out. (`e2e` starts the real binaries with their database URL and JWT
//! key behind ARNs, so `main`'s `secrets::load` runs too.)

use api_tests::{secrets, token_config};
use secrecy::{ExposeSecret, SecretString};
use shared::{
    config::with_vars,
    identity::{
        Role, SessionId, UserId,
        tokens::{AccessTokens, TokenConfig},
    },
    secrets::{KeySource, fetch, references},
};

const K1: &str = "first-key-first-key-first-key-first-key!";
const K2: &str = "second-key-second-key-second-key-second";
const K3: &str = "third-key-third-key-third-key-third-key!";

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[tokio::test]
async fn each_secret_arn_stands_for_its_variable_and_the_jwt_key_brings_its_previous_version() {
    let database =
        secrets::create("postgres://app:pw@db.example.com/app?sslmode=verify-full").await;
    let jwt = secrets::create(K1).await;
    secrets::put(&jwt, K2).await;
    let stripe = secrets::create("sk_test_123").await;
    let env = vars(&[
        ("DATABASE_URL_SECRET_ARN", &database),
        ("JWT_SECRET_ARN", &jwt),
        ("STRIPE_SECRET_KEY_SECRET_ARN", &stripe),
        ("JWT_ISSUER", "backend"),
    ]);
    let (refs, read) = with_vars(env.clone(), references);
    let refs = refs.unwrap();
    assert_eq!(refs.len(), 3);
    assert!(read.contains("DATABASE_URL_SECRET_ARN"));

    let values = fetch(&secrets::client(), refs).await.unwrap();
    assert_eq!(
        values["DATABASE_URL"],
        "postgres://app:pw@db.example.com/app?sslmode=verify-full"
    );
    assert_eq!(values["STRIPE_SECRET_KEY"], "sk_test_123");
    assert_eq!(values["JWT_SECRET"], K2, "AWSCURRENT signs");
    assert_eq!(values["JWT_PREVIOUS_SECRETS"], K1, "AWSPREVIOUS verifies");

    // The token settings loaded over those values: K2 signs, K1 still verifies, and the
    // keys know where to be re-read.
    let mut scope = env;
    scope.extend(values.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    let endpoint = api_tests::sqs::endpoint();
    scope.extend(vars(&[
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_ENDPOINT_URL", &endpoint),
    ]));
    let (config, _) = with_vars(scope, TokenConfig::from_env);
    let config = config.unwrap();
    assert_eq!(config.jwt_secret.expose_secret(), K2);
    assert_eq!(config.previous_secrets.len(), 1);
    assert_eq!(config.key_source.as_ref().unwrap().secret_id, jwt);
    let before = AccessTokens::new(&key_config(K1, None));
    let old = before
        .issue(UserId::new(), SessionId::new(), Role::User)
        .unwrap();
    assert!(AccessTokens::new(&config).verify(&old.token).is_ok());

    // A secret never rotated has no previous version.
    let fresh = secrets::create(K3).await;
    let values = fetch(&secrets::client(), vec![("JWT_SECRET", fresh)])
        .await
        .unwrap();
    assert_eq!(values["JWT_SECRET"], K3);
    assert!(!values.contains_key("JWT_PREVIOUS_SECRETS"));
}

#[tokio::test]
async fn a_secret_set_both_ways_or_unreadable_stops_the_start_naming_the_variable() {
    let (refs, _) = with_vars(
        vars(&[
            ("DATABASE_URL", "postgres://localhost/app"),
            (
                "DATABASE_URL_SECRET_ARN",
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:db",
            ),
        ]),
        references,
    );
    let err = refs.unwrap_err().to_string();
    assert!(err.contains("DATABASE_URL_SECRET_ARN"), "{err}");
    assert!(err.contains("set one of them"), "{err}");

    let missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:nowhere-AbCdEf";
    let err = fetch(
        &secrets::client(),
        vec![("DATABASE_URL", missing.to_owned())],
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("DATABASE_URL"), "{err}");
    assert!(err.contains("ResourceNotFoundException"), "{err}");

    // Unreachable Secrets Manager: refused in bounded time, not hung.
    let unreachable =
        shared::secrets::SecretsClient::new(api_tests::sqs::access_for("http://127.0.0.1:9"));
    let err = fetch(&unreachable, vec![("JWT_SECRET", missing.to_owned())])
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("JWT_SECRET"), "{err}");
}

fn key_config(current: &str, source: Option<&str>) -> TokenConfig {
    TokenConfig {
        jwt_secret: SecretString::from(current.to_owned()),
        key_source: source.map(|arn| KeySource {
            secret_id: arn.to_owned(),
            client: secrets::client(),
        }),
        ..token_config()
    }
}

#[tokio::test]
async fn a_rotated_key_reaches_environments_started_before_it_without_logging_anyone_out() {
    let arn = secrets::create(K1).await;
    // An environment warm since before the rotation, and a token it issued.
    let warm = AccessTokens::new(&key_config(K1, Some(&arn)));
    let (user, session) = (UserId::new(), SessionId::new());
    let old_token = warm.issue(user, session, Role::User).unwrap().token;

    // Rotation: K2 becomes current, K1 previous; a new environment starts with both.
    secrets::put(&arn, K2).await;
    let versions = KeySource {
        secret_id: arn.clone(),
        client: secrets::client(),
    }
    .read()
    .await
    .unwrap();
    let mut config = key_config(versions.current.expose_secret(), Some(&arn));
    config.previous_secrets = versions.previous.into_iter().collect();
    let cold = AccessTokens::new(&config);
    assert_ne!(cold.current_kid(), warm.current_kid());
    assert!(
        cold.verify(&old_token).is_ok(),
        "the old key still verifies"
    );

    // The cold environment's token names a key the warm one does not know: it re-reads
    // the secret instead of refusing, and signs with the new key from then on.
    let new_token = cold.issue(user, session, Role::User).unwrap().token;
    assert!(
        warm.verify(&new_token).is_err(),
        "not known before the re-read"
    );
    let claims = warm.verify_or_refresh(&new_token).await.unwrap();
    assert_eq!(claims.sub, user);
    assert_eq!(warm.current_kid(), cold.current_kid());
    assert!(
        warm.verify(&old_token).is_ok(),
        "its own older tokens still pass"
    );

    // At most one re-read per interval: a third key, rotated in right away, waits.
    secrets::put(&arn, K3).await;
    let third = AccessTokens::new(&key_config(K3, None));
    let third_token = third.issue(user, session, Role::User).unwrap().token;
    assert!(warm.verify_or_refresh(&third_token).await.is_err());

    // Without a secret behind the keys an unknown kid is simply refused.
    let plain = AccessTokens::new(&key_config(K1, None));
    assert!(plain.verify_or_refresh(&new_token).await.is_err());
}
