"""GraphQL of protected exports (SPEC §11): the `exports` history, `exportCreate`, `exportCancel`,
the `exportProgress` subscription. Thin: decode ids, call app.exports, shape the answer."""
