import { describe, expect, it } from "vitest";
import { parseJsonLossless } from "../src/pendo/json";

const parse = (text: string) => {
  const result = parseJsonLossless(text, 32);
  if (!result.ok) throw new Error(result.message);
  return result.value;
};

describe("lossless JSON", () => {
  it("keeps the digits of integers past 2^53, positive and negative, at any depth", () => {
    expect(
      parse('{"a":12345678901234567891,"b":[-98765432109876543210],"c":{"d":9007199254740993}}'),
    ).toEqual({
      a: "12345678901234567891",
      b: ["-98765432109876543210"],
      c: { d: "9007199254740993" },
    });
  });

  it("leaves safe integers, floats and exponent literals as numbers", () => {
    expect(
      parse('{"a":9007199254740991,"b":0.1,"c":1e+100,"d":4802463602049999,"e":12345678901234567891}'),
    ).toEqual({
      a: 9007199254740991,
      b: 0.1,
      c: 1e100,
      d: 4802463602049999,
      e: "12345678901234567891",
    });
  });

  it("keeps a literal that overflows to Infinity instead of letting it become null", () => {
    expect(parse('{"a":1e400}')).toEqual({ a: "1e400" });
  });

  it("is not fooled by long digit runs inside strings", () => {
    expect(parse('{"id":"12345678901234567890","n":1}')).toEqual({ id: "12345678901234567890", n: 1 });
  });

  it("reports invalid JSON as data, not as a throw", () => {
    expect(parseJsonLossless("{", 32)).toMatchObject({ ok: false, path: "" });
  });

  it("names where a value nests past the limit, through objects and arrays", () => {
    expect(parseJsonLossless('{"a":[{"b":{"c":1}}]}', 3)).toEqual({
      ok: false,
      path: "a.0.b",
      message: "nested deeper than 3 levels",
    });
    expect(parseJsonLossless('{"a":[{"b":1}]}', 3)).toEqual({ ok: true, value: { a: [{ b: 1 }] } });
  });
});
