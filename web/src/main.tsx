import { render } from "preact";
import { App } from "./components/App";
import "./styles.css";
import { applyTheme } from "./theme";

applyTheme();

const root = document.getElementById("app");
if (root) render(<App />, root);
