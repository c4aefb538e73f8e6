import { MatrixError } from "matrix-js-sdk";
import { warmCrypto } from "../crypto/engine";
import { useEffect, useState } from "preact/hooks";
import { lang, languages, setLang, t, type Lang } from "../i18n";
import {
  describeError,
  loginFlows,
  loginWithPassword,
  register,
  RegistrationError,
  registrationState,
  ssoRedirectUrl,
  type LoginFlows,
  type RegistrationState,
  type Session,
} from "../session";

interface Props {
  notice: string | null;
  onSession: (s: Session) => void;
}

function errorText(err: unknown): string {
  const d = describeError(err);
  return d.key ? t(d.key) : t("error.generic", { message: d.message });
}

function LangSwitch() {
  return (
    <label class="lang-switch">
      <span class="visually-hidden">{t("settings.language")}</span>
      <select value={lang()} onChange={(e) => setLang((e.currentTarget as HTMLSelectElement).value as Lang)}>
        {Object.entries(languages).map(([code, name]) => (
          <option value={code} key={code}>
            {name}
          </option>
        ))}
      </select>
    </label>
  );
}

export function Auth({ notice, onSession }: Props) {
  const [mode, setMode] = useState<"login" | "register">(() => (window.location.hash === "#/register" ? "register" : "login"));
  const [flows, setFlows] = useState<LoginFlows | null>(null);
  const [reg, setReg] = useState<RegistrationState | null>(null);

  useEffect(() => {
    loginFlows().then(setFlows, () => setFlows({ password: true, sso: false, token: false, providers: [] }));
    registrationState().then(setReg, () => setReg({ kind: "closed" }));
  }, []);

  const go = (m: "login" | "register") => {
    setMode(m);
    window.location.hash = m === "register" ? "#/register" : "";
  };

  return (
    <main class="auth">
      <div class="auth-card">
        <header class="auth-head">
          <img src="/favicon.svg" alt="" width={40} height={40} />
          <h1>{t("app.name")}</h1>
          <LangSwitch />
        </header>
        <p class="muted">{t("auth.server", { server: window.location.host })}</p>
        {notice && (
          <p class="notice" role="status">
            {notice}
          </p>
        )}
        {mode === "login" ? (
          <Login flows={flows} canRegister={reg?.kind === "open"} onRegister={() => go("register")} onSession={onSession} />
        ) : (
          <Register state={reg} onLogin={() => go("login")} onSession={onSession} />
        )}
      </div>
    </main>
  );
}

function Login(props: { flows: LoginFlows | null; canRegister: boolean; onRegister: () => void; onSession: (s: Session) => void }) {
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      props.onSession(await loginWithPassword(username, password));
    } catch (err) {
      setError(err instanceof MatrixError && err.errcode === "M_FORBIDDEN" ? t("auth.login.failed") : errorText(err));
      setBusy(false);
    }
  };

  return (
    <section aria-labelledby="login-title">
      <h2 id="login-title">{t("auth.login.title")}</h2>
      {props.flows?.password !== false && (
        <form onSubmit={submit} onInput={warmCrypto} class="form">
          <label>
            {t("auth.username")}
            <input name="username" autoFocus autocomplete="username" required value={username} onInput={(e) => setUsername(e.currentTarget.value)} />
          </label>
          <label>
            {t("auth.password")}
            <input
              name="password"
              type="password"
              autocomplete="current-password"
              required
              value={password}
              onInput={(e) => setPassword(e.currentTarget.value)}
            />
          </label>
          {error && (
            <p class="error" role="alert">
              {error}
            </p>
          )}
          <button type="submit" class="primary" disabled={busy}>
            {busy ? t("auth.login.busy") : t("auth.login.submit")}
          </button>
        </form>
      )}
      {props.flows?.sso && props.flows.providers.length === 0 && (
        <p>
          <a class="button" href={ssoRedirectUrl()}>
            {t("auth.login.sso")}
          </a>
        </p>
      )}
      {props.flows?.providers.map((p) => (
        <p key={p.id}>
          <a class="button" href={ssoRedirectUrl(p.id)}>
            {t("auth.login.ssoWith", { name: p.name })}
          </a>
        </p>
      ))}
      {props.canRegister && (
        <p>
          <button type="button" class="link" onClick={props.onRegister}>
            {t("auth.login.toRegister")}
          </button>
        </p>
      )}
    </section>
  );
}

function Register(props: { state: RegistrationState | null; onLogin: () => void; onSession: (s: Session) => void }) {
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [confirm, setConfirm] = useState("");
  const [token, setToken] = useState(() => new URLSearchParams(window.location.search).get("token") ?? "");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const st = props.state;

  const submit = async (e: Event) => {
    e.preventDefault();
    if (password !== confirm) {
      setError(t("auth.register.mismatch"));
      return;
    }
    setBusy(true);
    setError(null);
    try {
      props.onSession(await register(username, password, token));
    } catch (err) {
      if (err instanceof RegistrationError) {
        setError(err.code === "token" ? t("auth.register.tokenInvalid") : t("auth.register.unsupported", { stages: err.message }));
      } else {
        setError(errorText(err));
      }
      setBusy(false);
    }
  };

  return (
    <section aria-labelledby="register-title">
      <h2 id="register-title">{t("auth.register.title")}</h2>
      {st?.kind === "closed" && <p class="notice">{t("auth.register.closed")}</p>}
      {st?.kind === "unsupported" && <p class="notice">{t("auth.register.unsupported", { stages: st.stages.join(", ") })}</p>}
      {(st === null || st.kind === "open") && (
        <form onSubmit={submit} onInput={warmCrypto} class="form">
          <label>
            {t("auth.username")}
            <input name="username" autoFocus autocomplete="username" required value={username} onInput={(e) => setUsername(e.currentTarget.value)} />
          </label>
          <label>
            {t("auth.password")}
            <input name="password" type="password" autocomplete="new-password" required value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
          </label>
          <label>
            {t("auth.passwordConfirm")}
            <input name="confirm" type="password" autocomplete="new-password" required value={confirm} onInput={(e) => setConfirm(e.currentTarget.value)} />
          </label>
          {st?.kind === "open" && st.needsToken && (
            <label>
              {t("auth.token")}
              <input name="token" required value={token} onInput={(e) => setToken(e.currentTarget.value)} />
            </label>
          )}
          {error && (
            <p class="error" role="alert">
              {error}
            </p>
          )}
          <button type="submit" class="primary" disabled={busy || st === null}>
            {busy ? t("auth.register.busy") : t("auth.register.submit")}
          </button>
        </form>
      )}
      <p>
        <button type="button" class="link" onClick={props.onLogin}>
          {t("auth.register.toLogin")}
        </button>
      </p>
    </section>
  );
}
