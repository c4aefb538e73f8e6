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
  "e2e.settingUp": "Setting up encryption for your account…",
  "e2e.setupFailed": "Encryption could not be set up: {reason}",
  "e2e.close": "Close",
  "e2e.keyTitle": "Your recovery key",
  "e2e.keyIntro": "Your messages are end-to-end encrypted. This key lets you read them on a new device or after losing this one. Keep it somewhere safe, away from this computer: a password manager or a printed copy.",
  "e2e.keyLabel": "Recovery key",
  "e2e.keyOnce": "It is shown only now. Salon cannot show it again or recover it for you.",
  "e2e.copy": "Copy",
  "e2e.copied": "Copied.",
  "e2e.copyFailed": "Copying is not allowed here: select the key and copy it.",
  "e2e.download": "Download as a file",
  "e2e.downloaded": "Saved as salon-recovery-key.txt.",
  "e2e.saved": "I have saved it",
  "e2e.fileIntro": "Salon recovery key for {user}. Keep it safe: with it, anyone can read your encrypted messages.",
  "e2e.confirmTitle": "Confirm it is you",
  "e2e.confirmIntro": "This is a new session. Enter your recovery key (or passphrase) to read your earlier encrypted messages here and to let the people you talk to trust it.",
  "e2e.keyInput": "Recovery key or passphrase",
  "e2e.confirm": "Confirm",
  "e2e.confirming": "Confirming…",
  "e2e.notNow": "Not now",
  "e2e.wrongKey": "This is not your recovery key or passphrase.",
  "e2e.confirmed": "This session is confirmed. {n} message keys were restored from your backup.",
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
  "e2e.settingUp": "Mise en place du chiffrement de votre compte…",
  "e2e.setupFailed": "Le chiffrement n’a pas pu être mis en place : {reason}",
  "e2e.close": "Fermer",
  "e2e.keyTitle": "Votre clé de récupération",
  "e2e.keyIntro": "Vos messages sont chiffrés de bout en bout. Cette clé vous permet de les lire sur un nouvel appareil ou après avoir perdu celui-ci. Gardez-la en lieu sûr, hors de cet ordinateur : un gestionnaire de mots de passe ou une copie imprimée.",
  "e2e.keyLabel": "Clé de récupération",
  "e2e.keyOnce": "Elle n’est affichée que maintenant. Salon ne peut ni la réafficher ni la retrouver pour vous.",
  "e2e.copy": "Copier",
  "e2e.copied": "Copiée.",
  "e2e.copyFailed": "La copie n’est pas permise ici : sélectionnez la clé et copiez-la.",
  "e2e.download": "Télécharger dans un fichier",
  "e2e.downloaded": "Enregistrée dans salon-recovery-key.txt.",
  "e2e.saved": "Je l’ai mise de côté",
  "e2e.fileIntro": "Clé de récupération Salon de {user}. Gardez-la en lieu sûr : avec elle, n’importe qui peut lire vos messages chiffrés.",
  "e2e.confirmTitle": "Confirmez que c’est vous",
  "e2e.confirmIntro": "Ceci est une nouvelle session. Saisissez votre clé de récupération (ou votre phrase secrète) pour lire ici vos anciens messages chiffrés et pour que vos correspondants puissent lui faire confiance.",
  "e2e.keyInput": "Clé de récupération ou phrase secrète",
  "e2e.confirm": "Confirmer",
  "e2e.confirming": "Confirmation…",
  "e2e.notNow": "Plus tard",
  "e2e.wrongKey": "Ce n’est pas votre clé de récupération ni votre phrase secrète.",
  "e2e.confirmed": "Cette session est confirmée. {n} clés de messages ont été restaurées depuis votre sauvegarde.",
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
