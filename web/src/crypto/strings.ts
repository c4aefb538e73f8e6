// The strings of end-to-end encryption, in English and French, apart from
// src/i18n.ts so the two dictionaries grow without touching each other.
// The language is the client's (src/i18n.ts lang()).
import { lang } from "../i18n";

const en = {
  "e2e.encrypted": "End-to-end encrypted",
  "e2e.encryptedHint": "Only the people in this conversation can read its messages; the server stores them encrypted.",
  "e2e.notEncrypted": "Not encrypted",
  "e2e.notEncryptedHint": "Messages here are stored readable on the server; anyone who joins can read them.",
  "e2e.starting": "Starting end-to-end encryption…",
  "e2e.unavailable": "End-to-end encryption could not start in this browser: encrypted conversations cannot be read or written here.",
  "e2e.decrypting": "Decrypting…",
  "e2e.turnedOn": "{user} turned on end-to-end encryption",
  "e2e.waitingKey": "Waiting for the key to this message from {user}’s device. It will show once the key arrives.",
  "e2e.waitingKeyBackup": "Waiting for the key to this message; it will show once this session gets it from your key backup or another of your sessions.",
  "e2e.withheld": "{user}’s device did not share the key to this message with this session.",
  "e2e.withheldUnverified": "{user}’s device shares its keys only with verified sessions, and this one is not verified yet.",
  "e2e.beforeJoined": "Sent before you joined this conversation: its key was not shared with you.",
  "e2e.noBackup": "Sent before this session was signed in, and no key backup holds its key.",
  "e2e.backupLocked": "Sent before this session was signed in: enter your recovery key to read it from your key backup.",
  "e2e.historical": "Sent before this session was signed in; its key is being looked for in your key backup.",
  "e2e.senderChanged": "{user}’s identity changed since you verified it: this message is not shown.",
  "e2e.unknownDevice": "Sent from a session of {user} that is unknown or not verified by them: this message is not shown.",
  "e2e.failed": "This encrypted message could not be decrypted ({reason}).",
  "e2e.attachmentFailed": "The encrypted attachment could not be decrypted.",
};

export type E2EKey = keyof typeof en;

const fr: Record<E2EKey, string> = {
  "e2e.encrypted": "Chiffré de bout en bout",
  "e2e.encryptedHint": "Seules les personnes de cette conversation peuvent lire ses messages ; le serveur les garde chiffrés.",
  "e2e.notEncrypted": "Non chiffré",
  "e2e.notEncryptedHint": "Les messages d’ici sont gardés en clair sur le serveur ; toute personne qui rejoint peut les lire.",
  "e2e.starting": "Démarrage du chiffrement de bout en bout…",
  "e2e.unavailable": "Le chiffrement de bout en bout n’a pas pu démarrer dans ce navigateur : les conversations chiffrées ne peuvent être ni lues ni écrites ici.",
  "e2e.decrypting": "Déchiffrement…",
  "e2e.turnedOn": "{user} a activé le chiffrement de bout en bout",
  "e2e.waitingKey": "En attente de la clé de ce message depuis l’appareil de {user}. Il s’affichera dès que la clé arrivera.",
  "e2e.waitingKeyBackup": "En attente de la clé de ce message ; il s’affichera dès que cette session la recevra de votre sauvegarde des clés ou d’une autre de vos sessions.",
  "e2e.withheld": "L’appareil de {user} n’a pas partagé la clé de ce message avec cette session.",
  "e2e.withheldUnverified": "L’appareil de {user} ne partage ses clés qu’avec les sessions vérifiées, et celle-ci ne l’est pas encore.",
  "e2e.beforeJoined": "Envoyé avant que vous ne rejoigniez cette conversation : sa clé ne vous a pas été partagée.",
  "e2e.noBackup": "Envoyé avant l’ouverture de cette session, et aucune sauvegarde des clés ne contient sa clé.",
  "e2e.backupLocked": "Envoyé avant l’ouverture de cette session : saisissez votre clé de récupération pour le lire depuis votre sauvegarde des clés.",
  "e2e.historical": "Envoyé avant l’ouverture de cette session ; sa clé est recherchée dans votre sauvegarde des clés.",
  "e2e.senderChanged": "L’identité de {user} a changé depuis que vous l’avez vérifiée : ce message n’est pas affiché.",
  "e2e.unknownDevice": "Envoyé depuis une session de {user} inconnue ou non vérifiée par cette personne : ce message n’est pas affiché.",
  "e2e.failed": "Ce message chiffré n’a pas pu être déchiffré ({reason}).",
  "e2e.attachmentFailed": "La pièce jointe chiffrée n’a pas pu être déchiffrée.",
};

const dicts = { en, fr } as const;

/** A string of end-to-end encryption in the client's language. */
export function tc(key: E2EKey, vars?: Record<string, string | number>): string {
  const d = (dicts as Record<string, Record<E2EKey, string>>)[lang()] ?? en;
  let s = d[key] ?? en[key];
  if (vars) for (const [k, v] of Object.entries(vars)) s = s.split(`{${k}}`).join(String(v));
  return s;
}

/** Both dictionaries, for the test that every key has a French string. */
export const cryptoStrings = dicts;
