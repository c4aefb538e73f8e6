// The colour theme: the system's (prefers-color-scheme) unless the person
// chose light or dark in the settings; kept in localStorage.
export type Theme = "system" | "light" | "dark";

const key = "salon.theme";

export function chosenTheme(): Theme {
  try {
    const v = localStorage.getItem(key);
    return v === "light" || v === "dark" ? v : "system";
  } catch {
    return "system";
  }
}

export function applyTheme(theme: Theme = chosenTheme()): void {
  const root = document.documentElement;
  if (theme === "system") delete root.dataset.theme;
  else root.dataset.theme = theme;
}

export function setTheme(theme: Theme): void {
  if (theme === "system") localStorage.removeItem(key);
  else localStorage.setItem(key, theme);
  applyTheme(theme);
}
