//! Queues on the local SQS-compatible server (`moto_server`), through the real SDK.

use std::{collections::HashMap, sync::Mutex, time::Duration};

use aws_sdk_sqs::{
    config::{BehaviorVersion, Credentials, Region, timeout::TimeoutConfig},
    types::{MessageSystemAttributeName, QueueAttributeName},
};
use serde_json::{Value, json};
use shared::{messaging::Publisher, sigv4::AwsAccess};

/// Where the emulator listens: `AWS_ENDPOINT_URL`, as for the functions themselves.
pub fn endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| "http://127.0.0.1:5000".into())
}

/// An SQS client for `endpoint_url` with dummy credentials.
pub fn client_for(endpoint_url: &str) -> aws_sdk_sqs::Client {
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
        .endpoint_url(endpoint_url)
        .http_client(crate::sdk_http_client())
        .timeout_config(
            TimeoutConfig::builder()
                .operation_timeout(Duration::from_secs(5))
                .build(),
        )
        .build();
    aws_sdk_sqs::Client::from_conf(config)
}

/// Publishers' access to `endpoint_url` with dummy credentials.
pub fn access_for(endpoint_url: &str) -> AwsAccess {
    let credentials = Credentials::new("test", "test", None, None, "tests");
    AwsAccess::new(credentials, "us-east-1", Some(endpoint_url.to_owned()))
}

/// A publisher whose queue cannot be reached (nothing listens on the port).
pub fn unreachable_publisher() -> Publisher {
    Publisher::new(
        access_for("http://127.0.0.1:9"),
        "http://127.0.0.1:9/123456789012/nowhere",
    )
}

/// A publisher whose queue accepts connections and never answers (a stalled endpoint),
/// with the task that holds them; it stalls until the task is dropped.
pub async fn hanging_publisher() -> (Publisher, tokio::task::JoinHandle<()>) {
    let (address, holder) = crate::stalled_listener().await;
    let endpoint = format!("http://{address}");
    let url = format!("{endpoint}/123456789012/stalled");
    (Publisher::new(access_for(&endpoint), &url), holder)
}

/// A queue of the test's own.
pub struct Queue {
    /// SDK client for the emulator.
    pub client: aws_sdk_sqs::Client,
    /// The queue's URL.
    pub url: String,
    /// The queue's name.
    pub name: String,
    receipts: Mutex<HashMap<String, String>>,
}

impl Queue {
    /// Creates a uniquely named queue with a short visibility timeout.
    pub async fn create() -> Self {
        let client = client_for(&endpoint());
        let name = format!("test-{}", uuid::Uuid::new_v4().simple());
        let created = client
            .create_queue()
            .queue_name(&name)
            .attributes(QueueAttributeName::VisibilityTimeout, "30")
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "cannot create a queue on the SQS emulator at {} ({e:?}); run the tests with scripts/test",
                    endpoint()
                )
            });
        let url = created.queue_url().expect("queue url").to_owned();
        Self {
            client,
            url,
            name,
            receipts: Mutex::new(HashMap::new()),
        }
    }

    /// A publisher for this queue.
    pub fn publisher(&self) -> Publisher {
        Publisher::new(access_for(&endpoint()), self.url.clone())
    }

    /// Receives up to ten messages and shapes them as the SQS event Lambda would send.
    pub async fn receive_event(&self, wait: Duration) -> Value {
        let output = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(10)
            .wait_time_seconds(wait.as_secs() as i32)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .expect("receive_message");
        let mut receipts = self.receipts.lock().expect("lock");
        let records: Vec<Value> = output
            .messages()
            .iter()
            .map(|m| {
                let id = m.message_id().unwrap_or_default().to_owned();
                receipts.insert(
                    id.clone(),
                    m.receipt_handle().unwrap_or_default().to_owned(),
                );
                let attributes: serde_json::Map<String, Value> = m
                    .attributes()
                    .map(|a| {
                        a.iter()
                            .map(|(k, v)| (k.as_str().to_owned(), json!(v)))
                            .collect()
                    })
                    .unwrap_or_default();
                json!({
                    "messageId": id,
                    "receiptHandle": m.receipt_handle(),
                    "body": m.body(),
                    "attributes": attributes,
                    "messageAttributes": {},
                    "md5OfBody": m.md5_of_body(),
                    "eventSource": "aws:sqs",
                    "eventSourceARN": format!("arn:aws:sqs:us-east-1:123456789012:{}", self.name),
                    "awsRegion": "us-east-1"
                })
            })
            .collect();
        json!({ "Records": records })
    }

    /// Deletes every received message the worker did not report as failed, as Lambda's
    /// event source mapping does.
    pub async fn delete_succeeded(&self, response: &Value) {
        // A handler's answer always has the list (empty when all succeeded): a missing one
        // is a broken handler, not a batch that succeeded.
        let failed: Vec<&str> = response["batchItemFailures"]
            .as_array()
            .unwrap_or_else(|| panic!("no batchItemFailures in {response}"))
            .iter()
            .map(|i| {
                i["itemIdentifier"]
                    .as_str()
                    .unwrap_or_else(|| panic!("a failure without an itemIdentifier: {i}"))
            })
            .collect();
        let to_delete: Vec<String> = {
            let mut receipts = self.receipts.lock().expect("lock");
            let ids: Vec<String> = receipts
                .keys()
                .filter(|id| !failed.contains(&id.as_str()))
                .cloned()
                .collect();
            ids.iter().filter_map(|id| receipts.remove(id)).collect()
        };
        for receipt in to_delete {
            self.client
                .delete_message()
                .queue_url(&self.url)
                .receipt_handle(receipt)
                .send()
                .await
                .expect("delete_message");
        }
    }

    /// Sends a raw body straight to the queue (as a misbehaving publisher would).
    pub async fn send_raw(&self, body: &str) {
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .send()
            .await
            .expect("send_message");
    }
}
