// Sections of the person's settings: the colour theme, browser
// notifications, and their sessions (devices), with signing out others.
import { PushRuleActionName, PushRuleKind, TweakName } from "matrix-js-sdk";
import { useEffect, useState } from "preact/hooks";
import { t } from "../i18n";
import { useClient } from "../hooks";
import { notificationsSupported, notificationsWanted, setNotificationsWanted } from "../notify";
import { chosenTheme, setTheme, type Theme } from "../theme";
import { Avatar } from "./common";
import { errText } from "./Dialogs";

export function ThemeSetting() {
  const [theme, set] = useState<Theme>(chosenTheme());
  return (
    <section class="form">
      <label>
        {t("settings.theme")}
        <select
          name="theme"
          value={theme}
          onChange={(e) => {
            const v = e.currentTarget.value as Theme;
            set(v);
            setTheme(v);
          }}
        >
          <option value="system">{t("settings.theme.system")}</option>
          <option value="light">{t("settings.theme.light")}</option>
          <option value="dark">{t("settings.theme.dark")}</option>
        </select>
      </label>
    </section>
  );
}

/** Browser notifications: on (asking the browser) or off, and why not when refused. */
export function NotificationSetting() {
  const [wanted, setWanted] = useState(notificationsWanted());
  const [perm, setPerm] = useState<NotificationPermission | "unsupported">(notificationsSupported() ? Notification.permission : "unsupported");
  return (
    <section class="form" aria-labelledby="settings-notify">
      <h3 id="settings-notify">{t("settings.notifications")}</h3>
      <label class="radio">
        <input
          type="checkbox"
          name="notifications"
          checked={wanted && perm === "granted"}
          disabled={perm === "unsupported" || perm === "denied"}
          onChange={(e) => {
            const on = e.currentTarget.checked;
            setWanted(on);
            void setNotificationsWanted(on).then(setPerm);
          }}
        />
        {t("settings.notifyDesktop")}
      </label>
      {perm === "denied" && <small class="muted">{t("settings.notifyDenied")}</small>}
      {perm === "unsupported" && <small class="muted">{t("settings.notifyUnsupported")}</small>}
      <Keywords />
    </section>
  );
}

/**
 * Keywords that notify (and highlight): the account's content push rules
 * other than the server's defaults (whose IDs start with a dot).
 */
function Keywords() {
  const client = useClient();
  const [, setTick] = useState(0);
  const [word, setWord] = useState("");
  const [error, setError] = useState<string | null>(null);
  const rules = (client.pushRules?.global?.content ?? []).filter((r) => !r.rule_id.startsWith(".") && r.pattern);
  const refresh = async () => {
    client.pushRules = await client.getPushRules();
    setTick((n) => n + 1);
  };
  const add = async () => {
    const w = word.trim();
    if (!w) return;
    setError(null);
    try {
      await client.addPushRule("global", PushRuleKind.ContentSpecific, w, {
        pattern: w,
        actions: [PushRuleActionName.Notify, { set_tweak: TweakName.Highlight }, { set_tweak: TweakName.Sound, value: "default" }],
      });
      setWord("");
      await refresh();
    } catch (err) {
      setError(errText(err));
    }
  };
  return (
    <div class="keywords">
      <form
        class="inline-form"
        onSubmit={(e) => {
          e.preventDefault();
          void add();
        }}
      >
        <label>
          {t("settings.keyword")}
          <input name="keyword" value={word} onInput={(e) => setWord(e.currentTarget.value)} />
        </label>
        <button type="submit" class="small" disabled={word.trim() === ""}>
          {t("settings.keywordAdd")}
        </button>
      </form>
      {rules.length > 0 && (
        <ul class="keyword-list" aria-label={t("settings.keywords")}>
          {rules.map((r) => (
            <li key={r.rule_id}>
              {r.pattern}
              <button
                type="button"
                class="icon small"
                aria-label={t("settings.keywordRemove", { word: r.pattern ?? "" })}
                onClick={() => void client.deletePushRule("global", PushRuleKind.ContentSpecific, r.rule_id).then(refresh, (err: unknown) => setError(errText(err)))}
              >
                ×
              </button>
            </li>
          ))}
        </ul>
      )}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}

/**
 * An avatar picker: an image file is uploaded (authenticated media) and
 * handed to onUploaded as its mxc:// URI.
 */
export function AvatarPicker(props: { label: string; id: string; name: string; mxc: string | null | undefined; disabled?: boolean; onUploaded: (mxc: string) => Promise<unknown> }) {
  const client = useClient();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [mxc, setMxc] = useState(props.mxc ?? null);
  return (
    <div class="avatar-picker">
      <Avatar id={props.id} name={props.name} mxc={mxc} size={56} />
      <label class="button small">
        {busy ? t("app.loading") : props.label}
        <input
          type="file"
          accept="image/png, image/jpeg, image/webp, image/gif"
          class="visually-hidden"
          disabled={busy || props.disabled}
          onChange={(e) => {
            const file = e.currentTarget.files?.[0];
            e.currentTarget.value = "";
            if (!file) return;
            setBusy(true);
            setError(null);
            client
              .uploadContent(file, { name: file.name, type: file.type })
              .then(async (r) => {
                await props.onUploaded(r.content_uri);
                setMxc(r.content_uri);
              })
              .catch((err: unknown) => setError(errText(err)))
              .finally(() => setBusy(false));
          }}
        />
      </label>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}
