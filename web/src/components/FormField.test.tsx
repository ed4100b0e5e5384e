import { renderToStaticMarkup } from "react-dom/server";
import { describe, expect, it } from "vitest";

import { FormError, FormField } from "@/components/FormField";
import { Input } from "@/components/ui/input";

const render = renderToStaticMarkup;

/** The attributes of the first `tag` in the markup. */
function attributesOf(html: string, tag: string): Record<string, string> {
  const match = new RegExp(`<${tag}\\b([^>]*)>`).exec(html);
  if (!match) throw new Error(`no <${tag}> in ${html}`);
  const attributes: Record<string, string> = {};
  for (const [, name, value] of match[1]!.matchAll(/([\w-]+)="([^"]*)"/g)) attributes[name!] = value!;
  return attributes;
}

describe("FormField", () => {
  it("labels its control and leaves it valid without a violation", () => {
    const html = render(
      <FormField id="register-model-name" label="Name">
        <Input value="" readOnly />
      </FormField>,
    );
    expect(attributesOf(html, "label")).toMatchObject({ for: "register-model-name" });
    const input = attributesOf(html, "input");
    expect(input.id).toBe("register-model-name");
    expect(input).not.toHaveProperty("aria-invalid");
    expect(input).not.toHaveProperty("aria-describedby");
    expect(html).not.toContain('role="alert"');
  });

  it("shows the violation under the control, which points at it", () => {
    const html = render(
      <FormField id="register-model-name" label="Name" error="'Bad Name!' is not valid">
        <Input value="Bad Name!" readOnly className="font-mono" />
      </FormField>,
    );
    const input = attributesOf(html, "input");
    expect(input).toMatchObject({ id: "register-model-name", "aria-invalid": "true", "aria-describedby": "register-model-name-error" });
    expect(input.class).toContain("font-mono");
    expect(html).toMatch(/<p id="register-model-name-error"[^>]*role="alert"[^>]*>.*&#x27;Bad Name!&#x27; is not valid<\/p>/);
  });

  it("describes the control by its hint, then its violation", () => {
    const html = render(
      <FormField id="job-config-rank" label="Rank" hint="Default: 8 · 1 ≤ x ≤ 1024" error="must be at most 1024">
        <Input value="4096" readOnly />
      </FormField>,
    );
    expect(attributesOf(html, "input")["aria-describedby"]).toBe("job-config-rank-hint job-config-rank-error");
    expect(html).toContain('<p id="job-config-rank-hint" class="text-xs text-muted-foreground">Default: 8 · 1 ≤ x ≤ 1024</p>');
    expect(html.indexOf("job-config-rank-hint\" class")).toBeLessThan(html.indexOf('id="job-config-rank-error"'));
  });
});

describe("FormError", () => {
  it("is an alert with the message, and nothing without one", () => {
    expect(render(<FormError message={undefined} />)).toBe("");
    expect(render(<FormError message="offline" />)).toMatch(/^<div role="alert"[^>]*>offline<\/div>$/);
  });
});
