// Building the judge from the monitor config and the environment.

import AssayCore
import AssayScoring
import Testing

@testable import AssayJudgeHTTP

@Suite("OpenAI judge configuration")
struct ConfigurationTests {
    let judgeConfig = JudgeConfig(kind: .openai, baseURL: "https://llm.example.test/v1", model: "gpt-test", apiKeyEnv: "ASSAY_TEST_JUDGE_KEY")

    @Test("the key comes from the environment variable the config names")
    func keyFromEnvironment() throws {
        let configuration = try OpenAIJudgeConfiguration(judgeConfig: judgeConfig, environment: ["ASSAY_TEST_JUDGE_KEY": "sk-from-env-123"])
        #expect(configuration.apiKey.secret == "sk-from-env-123")
        #expect(configuration.model == "gpt-test")
        #expect(configuration.endpoint.absoluteString == "https://llm.example.test/v1/chat/completions")
        #expect(configuration.temperature == 0)
        #expect(configuration.useJSONResponseFormat)
        #expect(configuration.requestTimeout == .seconds(60))
        #expect(configuration.maxAttempts == 4)
    }

    @Test("a missing variable is an error naming the variable, not any value")
    func missingVariable() {
        let environment = ["OTHER_KEY": "sk-other-secret-999"]
        #expect {
            _ = try OpenAIJudgeConfiguration(judgeConfig: judgeConfig, environment: environment)
        } throws: { error in
            let message = "\(error)"
            return message.contains("ASSAY_TEST_JUDGE_KEY") && message.contains("not set") && !message.contains("sk-other-secret-999")
        }
    }

    @Test("an empty variable is an error naming the variable")
    func emptyVariable() {
        #expect {
            _ = try OpenAIJudgeConfiguration(judgeConfig: judgeConfig, environment: ["ASSAY_TEST_JUDGE_KEY": "  "])
        } throws: { error in
            "\(error)".contains("ASSAY_TEST_JUDGE_KEY") && "\(error)".contains("empty")
        }
    }

    @Test("a key with a line break is refused without echoing it")
    func keyWithNewline() {
        #expect {
            _ = try OpenAIJudgeConfiguration(judgeConfig: judgeConfig, environment: ["ASSAY_TEST_JUDGE_KEY": "sk-abc\r\nX-Evil: 1"])
        } throws: { error in
            let message = "\(error)"
            return message.contains("ASSAY_TEST_JUDGE_KEY") && !message.contains("sk-abc")
        }
    }

    @Test("offline kind and missing settings are refused")
    func wrongKind() {
        #expect(throws: OpenAIJudgeConfigurationError.self) {
            _ = try OpenAIJudgeConfiguration(judgeConfig: JudgeConfig(kind: .offline), environment: [:])
        }
        #expect(throws: OpenAIJudgeConfigurationError.self) {
            _ = try OpenAIJudgeConfiguration(judgeConfig: JudgeConfig(kind: .openai, model: "m", apiKeyEnv: "K"), environment: ["K": "v"])
        }
    }

    @Test("endpoint from base URL", arguments: [
        ("https://api.openai.com/v1", "https://api.openai.com/v1/chat/completions"),
        ("https://api.openai.com/v1/", "https://api.openai.com/v1/chat/completions"),
        ("https://api.openai.com", "https://api.openai.com/v1/chat/completions"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/v1/chat/completions"),
        ("https://gw.example.test/openai/v1", "https://gw.example.test/openai/v1/chat/completions"),
        ("https://gw.example.test/v1/chat/completions", "https://gw.example.test/v1/chat/completions"),
        ("https://gw.example.test/v1?api-version=2024", "https://gw.example.test/v1/chat/completions?api-version=2024"),
    ])
    func endpoint(base: String, expected: String) throws {
        #expect(try OpenAIJudgeConfiguration.endpoint(forBaseURL: base).absoluteString == expected)
    }

    @Test("bad base URLs", arguments: ["ftp://host/v1", "not a url", "/v1", "https://user:pw@host/v1", "https:///v1"])
    func badBaseURL(base: String) {
        #expect(throws: OpenAIJudgeConfigurationError.self) {
            _ = try OpenAIJudgeConfiguration.endpoint(forBaseURL: base)
        }
    }

    @Test("descriptions of the configuration and key never show the key")
    func redactedDescriptions() throws {
        let configuration = try OpenAIJudgeConfiguration(judgeConfig: judgeConfig, environment: ["ASSAY_TEST_JUDGE_KEY": "sk-shown-nowhere-42"])
        var dumped = ""
        dump(configuration, to: &dumped)
        for text in ["\(configuration)", String(reflecting: configuration), "\(configuration.apiKey)", String(reflecting: configuration.apiKey), dumped] {
            #expect(!text.contains("sk-shown-nowhere-42"))
        }
    }

    @Test("GovernedJudge.openAI takes the config's limits")
    func governedFactory() throws {
        let config = JudgeConfig(kind: .openai, baseURL: "http://127.0.0.1:9/v1", model: "m", apiKeyEnv: "K", maxConcurrency: 3, maxCallsPerWindow: 7)
        let judge = try GovernedJudge.openAI(judgeConfig: config, environment: ["K": "secret"], logger: quietLogger)
        #expect(judge.limits.maxConcurrency == 3)
        #expect(judge.limits.maxCallsPerWindow == 7)
        #expect(judge.sourceID == "openai:m")
    }
}
