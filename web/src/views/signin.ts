// Sign in with an API key: the gateway keeps the key server-side and gives the browser an HttpOnly,
// SameSite=Strict session cookie, so no script on the page (nor an XSS) can read the key afterwards.
import { ApiError, signIn } from "../api";
import { h } from "../dom";

export function signInView(root: HTMLElement, done: () => void): void {
  const input = h("input", { type: "password", name: "api_key", autocomplete: "off", required: true, "aria-label": "API key" });
  const error = h("p", { class: "error", role: "alert" });
  const form = h(
    "form",
    {
      class: "signin",
      onsubmit: async (event: Event) => {
        event.preventDefault();
        error.textContent = "";
        try {
          await signIn(input.value.trim());
          input.value = "";
          done();
        } catch (err) {
          error.textContent = err instanceof ApiError ? `${err.message} (${err.reason})` : String(err);
        }
      },
    },
    h("label", {}, "API key ", input),
    h("button", { type: "submit" }, "Sign in"),
    error,
    h("p", { class: "muted" }, "Create one with `ordo keys create --role read --name me` on the server."),
  );
  root.replaceChildren(h("h1", {}, "Sign in"), form);
  input.focus();
}
