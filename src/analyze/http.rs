//! An OpenAI-compatible chat endpoint (llama-server, Ollama, vLLM) for sites that
//! already run one. The schema is sent as `response_format` (`json_schema`), and
//! the answer is validated here all the same: a server that ignores the format
//! fails validation with a clear error instead of writing garbage.

use std::time::Duration;

use serde_json::{json, Value};

use super::AnalyzeError;

#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// e.g. `http://gpu-box:8000/v1`.
    pub base_url: String,
    pub model: String,
    /// Read from the environment variable named in the config, never logged.
    pub api_key: Option<String>,
    pub deadline: Duration,
    pub max_tokens: usize,
}

pub struct OpenAiHttp {
    config: HttpConfig,
    client: reqwest::Client,
}

impl OpenAiHttp {
    pub fn new(config: HttpConfig) -> Result<Self, AnalyzeError> {
        let client = reqwest::Client::builder()
            .timeout(config.deadline)
            .build()
            .map_err(|e| AnalyzeError::Unavailable(format!("HTTP client: {e}")))?;
        Ok(OpenAiHttp { config, client })
    }

    pub fn model_name(&self) -> &str {
        &self.config.model
    }

    /// One structured request; returns the parsed JSON answer.
    pub async fn request(&self, system: &str, user: &str, schema: &Value) -> Result<Value, AnalyzeError> {
        let url = format!("{}/chat/completions", self.config.base_url.trim_end_matches('/'));
        let body = json!({
            "model": self.config.model,
            "temperature": 0,
            "max_tokens": self.config.max_tokens,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "call_analysis", "schema": schema, "strict": true}},
        });
        let mut req = self.client.post(&url).json(&body);
        if let Some(key) = &self.config.api_key {
            req = req.bearer_auth(key);
        }
        let resp = req.send().await.map_err(|e| {
            let what = if e.is_timeout() { "timed out".to_string() } else { e.without_url().to_string() };
            AnalyzeError::Unavailable(format!("{}: {what}", self.config.base_url))
        })?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| AnalyzeError::Unavailable(e.without_url().to_string()))?;
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(AnalyzeError::Unavailable(format!("HTTP {status} from the LLM endpoint")));
        }
        if !status.is_success() {
            return Err(AnalyzeError::Invalid(format!("HTTP {status} from the LLM endpoint")));
        }
        let v: Value = serde_json::from_str(&text)
            .map_err(|_| AnalyzeError::Invalid("the endpoint's reply is not JSON".into()))?;
        let content = v["choices"][0]["message"]["content"]
            .as_str()
            .ok_or_else(|| AnalyzeError::Invalid("the reply has no choices[0].message.content".into()))?;
        let content = content.trim().trim_start_matches("```json").trim_start_matches("```").trim_end_matches("```");
        serde_json::from_str(content.trim()).map_err(|e| {
            // A small model looping inside a string runs into the token limit:
            // say so, rather than only that the JSON ends early.
            if v["choices"][0]["finish_reason"] == "length" {
                AnalyzeError::Invalid(format!(
                    "the model's answer was cut off at max_tokens ({}) before its JSON was complete",
                    self.config.max_tokens
                ))
            } else {
                AnalyzeError::Invalid(format!("the model's answer is not JSON ({e})"))
            }
        })
    }
}
