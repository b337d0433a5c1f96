//! Secrets on the Secrets Manager emulator (`moto_server`), written with the same signed
//! JSON calls the functions read them with.

use serde_json::{Value, json};
use shared::{aws::AwsClient, secrets::SecretsClient};

fn aws() -> AwsClient {
    AwsClient::new(crate::sqs::access_for(&crate::sqs::endpoint()))
}

async fn call(target: &str, payload: Value) -> Value {
    let aws = aws();
    let answer = aws
        .json_call(
            "secretsmanager",
            &aws.endpoint("secretsmanager"),
            "1.1",
            &format!("secretsmanager.{target}"),
            &payload,
            std::time::Duration::from_secs(5),
        )
        .await
        .unwrap_or_else(|e| panic!("{target}: {e:#}"));
    serde_json::from_slice(&answer).expect("a JSON answer")
}

/// Creates a secret with a unique name holding `value`; returns its ARN.
pub async fn create(value: &str) -> String {
    let name = format!("test/{}", uuid::Uuid::new_v4().simple());
    let created = call(
        "CreateSecret",
        json!({ "Name": name, "SecretString": value }),
    )
    .await;
    created["ARN"].as_str().expect("an ARN").to_owned()
}

/// Stores a new value: it becomes `AWSCURRENT`, the old one `AWSPREVIOUS` (a rotation).
pub async fn put(arn: &str, value: &str) {
    call(
        "PutSecretValue",
        json!({ "SecretId": arn, "SecretString": value }),
    )
    .await;
}

/// A client reading the emulator's secrets, as the functions do.
pub fn client() -> SecretsClient {
    SecretsClient::new(crate::sqs::access_for(&crate::sqs::endpoint()))
}
