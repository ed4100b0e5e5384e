import { describe, expect, it } from "vitest";

import { checkSampling, checkValue, describeLimit, LIMITS } from "@/components/playground/limits";
import { cliSnippet, curlSnippet, pythonSnippet } from "@/components/playground/snippets";
import { DEFAULT_SAMPLING } from "@/lib/conversations";

describe("sampling limits come from the API schema", () => {
  it("reads the bounds of SamplingParams", () => {
    expect(LIMITS.topP).toMatchObject({ exclusiveMinimum: 0, maximum: 1, integer: false });
    expect(LIMITS.minP).toMatchObject({ minimum: 0, exclusiveMaximum: 1 });
    expect(LIMITS.topK).toMatchObject({ minimum: 1, integer: true });
    expect(LIMITS.temperature.minimum).toBe(0);
    expect(describeLimit(LIMITS.topP)).toBe("0 < x ≤ 1");
    expect(describeLimit(LIMITS.maxTokens)).toBe("≥ 1");
  });

  it("rejects values outside them", () => {
    expect(checkValue("0", LIMITS.topP)).toMatch(/0 < x ≤ 1/);
    expect(checkValue("1", LIMITS.minP)).toBeDefined();
    expect(checkValue("2.5", LIMITS.topK)).toBe("Enter a whole number.");
    expect(checkValue("", LIMITS.topK)).toBeUndefined();
    expect(checkSampling({ ...DEFAULT_SAMPLING, seed: "x", stop: Array(9).fill("s").join("\n") })).toMatchObject({
      seed: expect.any(String),
      stop: expect.any(String),
    });
    expect(checkSampling(DEFAULT_SAMPLING)).toEqual({});
  });
});

describe("view code", () => {
  const request = {
    model: "smollm2@default",
    messages: [{ role: "user" as const, content: "It's Paris?" }],
    sampling: { temperature: 0.5, maxTokens: 16, topK: 40 },
  };
  it("writes curl with the exact JSON, quoted for the shell", () => {
    const curl = curlSnippet(request, "http://hub:8080");
    expect(curl).toContain("http://hub:8080/v1/generate:stream");
    expect(curl).toContain(`It'\\''s Paris?`);
  });
  it("writes Python for the openai client with the same sampling", () => {
    const py = pythonSnippet(request, "http://hub:8080");
    expect(py).toContain('base_url="http://hub:8080/openai/v1"');
    expect(py).toContain("temperature=0.5,");
    expect(py).toContain("max_tokens=16,");
    expect(py).toContain('extra_body={"top_k": 40}');
  });
  it("writes mlx-hub generate with its real flags and names what it cannot express", () => {
    const cli = cliSnippet(request);
    expect(cli).toContain("mlx-hub generate 'smollm2@default' 'It'\\''s Paris?' --max-tokens 16 --temperature 0.5");
    expect(cli).toContain("no flags for topK");
  });
});
