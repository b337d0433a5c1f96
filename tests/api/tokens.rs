//! Hostile access tokens: tampered, expired, `alg: none`, wrong audience or issuer,
//! wrong secret, malformed headers. All must be a 401 problem.

use api_tests::{JWT_SECRET, TestApp, Tokens};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use http::StatusCode;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};
use sqlx::PgPool;

/// Decodes the claims of a token we issued, to forge variations of it.
fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn sign(claims: &Value, secret: &str) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

async fn signed_in(app: &TestApp) -> Tokens {
    app.user("mallory@example.com").await
}

#[sqlx::test(migrations = "../migrations")]
async fn a_correctly_signed_token_is_accepted(db: PgPool) {
    // The control case: re-signing our own claims with our secret works, so the refusals
    // below are about what was changed, not about the forging helper.
    let app = TestApp::new(db).await;
    let tokens = signed_in(&app).await;
    let resigned = sign(&claims_of(&tokens.access_token), JWT_SECRET);
    assert_eq!(app.me(&resigned).await.status, StatusCode::OK);
}

#[sqlx::test(migrations = "../migrations")]
async fn tampered_token_is_refused(db: PgPool) {
    let app = TestApp::new(db).await;
    let tokens = signed_in(&app).await;
    // Change the payload (role: admin) but keep the original signature.
    let mut claims = claims_of(&tokens.access_token);
    claims["role"] = json!("admin");
    let parts: Vec<&str> = tokens.access_token.split('.').collect();
    let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
    let tampered = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
    app.me(&tampered).await.problem(StatusCode::UNAUTHORIZED);
    // Flip a signature character.
    let mut sig = parts[2].to_owned();
    let last = if sig.ends_with('A') { 'B' } else { 'A' };
    sig.pop();
    sig.push(last);
    app.me(&format!("{}.{}.{}", parts[0], parts[1], sig))
        .await
        .problem(StatusCode::UNAUTHORIZED);
}

#[sqlx::test(migrations = "../migrations")]
async fn expired_token_is_refused(db: PgPool) {
    let app = TestApp::new(db).await;
    let tokens = signed_in(&app).await;
    let mut claims = claims_of(&tokens.access_token);
    claims["iat"] = json!(claims["iat"].as_i64().unwrap() - 3600);
    claims["exp"] = json!(claims["iat"].as_i64().unwrap() + 900);
    app.me(&sign(&claims, JWT_SECRET))
        .await
        .problem(StatusCode::UNAUTHORIZED);
}

#[sqlx::test(migrations = "../migrations")]
async fn alg_none_is_refused(db: PgPool) {
    let app = TestApp::new(db).await;
    let tokens = signed_in(&app).await;
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload =
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims_of(&tokens.access_token)).unwrap());
    app.me(&format!("{header}.{payload}."))
        .await
        .problem(StatusCode::UNAUTHORIZED);
    app.me(&format!("{header}.{payload}"))
        .await
        .problem(StatusCode::UNAUTHORIZED);
}

#[sqlx::test(migrations = "../migrations")]
async fn wrong_audience_issuer_or_secret_is_refused(db: PgPool) {
    let app = TestApp::new(db).await;
    let tokens = signed_in(&app).await;
    let claims = claims_of(&tokens.access_token);
    let mut other_aud = claims.clone();
    other_aud["aud"] = json!("another-api");
    app.me(&sign(&other_aud, JWT_SECRET))
        .await
        .problem(StatusCode::UNAUTHORIZED);
    let mut other_iss = claims.clone();
    other_iss["iss"] = json!("someone-else");
    app.me(&sign(&other_iss, JWT_SECRET))
        .await
        .problem(StatusCode::UNAUTHORIZED);
    app.me(&sign(&claims, "a-different-secret-of-sufficient-length"))
        .await
        .problem(StatusCode::UNAUTHORIZED);
    // HS384 with the right secret: the algorithm is pinned.
    let hs384 = encode(
        &Header::new(Algorithm::HS384),
        &claims,
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap();
    app.me(&hs384).await.problem(StatusCode::UNAUTHORIZED);
}

#[sqlx::test(migrations = "../migrations")]
async fn a_valid_token_for_an_unknown_session_is_refused(db: PgPool) {
    let app = TestApp::new(db).await;
    let tokens = signed_in(&app).await;
    let mut claims = claims_of(&tokens.access_token);
    claims["sid"] = json!(uuid::Uuid::now_v7());
    app.me(&sign(&claims, JWT_SECRET))
        .await
        .problem(StatusCode::UNAUTHORIZED);
}

#[sqlx::test(migrations = "../migrations")]
async fn missing_or_malformed_authorization_is_refused(db: PgPool) {
    let app = TestApp::new(db).await;
    let tokens = signed_in(&app).await;
    let response = app.get("/api/v1/auth/me", None).await;
    response.problem(StatusCode::UNAUTHORIZED);
    assert_eq!(response.header("www-authenticate"), Some("Bearer"));
    for value in [
        "Basic dXNlcjpwYXNz".to_owned(),
        "Bearer".to_owned(),
        "Bearer ".to_owned(),
        tokens.access_token.clone(),
        format!("Token {}", tokens.access_token),
    ] {
        let r = app
            .request(
                api_tests::Function::Auth,
                http::Method::GET,
                "/api/v1/auth/me",
                &[("authorization", &value)],
                None,
            )
            .await;
        r.problem(StatusCode::UNAUTHORIZED);
    }
    app.me("not-a-jwt").await.problem(StatusCode::UNAUTHORIZED);
}
