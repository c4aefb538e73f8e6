// A small dictionary of the client's strings in English and French. The
// language comes from the browser unless the person chose one in the
// settings; the choice is kept in localStorage.
import { useEffect, useState } from "preact/hooks";

const en = {
  "app.name": "Salon",
  "app.loading": "Loading…",
  "app.connecting": "Connecting to the server…",
  "app.syncError": "The connection to the server is interrupted; retrying…",
  "app.syncUnsupported": "This server does not offer rooms and messages yet.",

  "auth.login.title": "Sign in",
  "auth.login.submit": "Sign in",
  "auth.login.busy": "Signing in…",
  "auth.login.sso": "Sign in with single sign-on",
  "auth.login.toRegister": "Create an account",
  "auth.login.failed": "Wrong username or password.",
  "auth.register.title": "Create an account",
  "auth.register.submit": "Create account",
  "auth.register.busy": "Creating the account…",
  "auth.register.toLogin": "I already have an account",
  "auth.register.closed": "This server does not accept new accounts.",
  "auth.register.unsupported": "This server asks for a registration step this client cannot do ({stages}).",
  "auth.register.mismatch": "The passwords differ.",
  "auth.register.tokenInvalid": "This registration token is not valid.",
  "auth.username": "Username",
  "auth.password": "Password",
  "auth.passwordConfirm": "Confirm the password",
  "auth.token": "Registration token",
  "auth.server": "Server: {server}",
  "auth.sessionEnded": "Your session ended; please sign in again.",

  "error.generic": "Something went wrong: {message}",
  "error.network": "The server could not be reached.",
  "error.rateLimited": "Too many attempts; try again in a moment.",

  "nav.home": "Home",
  "nav.spaces": "Spaces",
  "nav.rooms": "Rooms",
  "nav.skipComposer": "Skip to the message box",
  "nav.skipList": "Skip to the room list",
  "search.open": "Search messages",
  "search.title": "Search in {name}",
  "search.label": "Words to find",
  "search.submit": "Search",
  "search.none": "No message matches.",
  "search.count": "{count} messages found",
  "threads.open": "Threads",
  "threads.title": "Threads in {name}",
  "threads.none": "No thread in this room yet.",
  "threads.count": "{count} replies",
  "threads.thread": "Thread",
  "threads.replies": "Replies",
  "threads.reply": "Reply in the thread",
  "threads.back": "All threads",
  "switcher.title": "Go to a room",
  "switcher.label": "Room name",
  "switcher.none": "No room by that name.",
  "nav.createSpace": "Create a space",
  "nav.settings": "Settings",
  "nav.explore": "Explore public rooms",
  "nav.back": "Back to the room list",

  "rooms.title": "Rooms",
  "rooms.people": "People",
  "rooms.invites": "Invitations",
  "rooms.none": "No rooms yet.",
  "rooms.filter": "Filter rooms",
  "rooms.create": "New room",
  "rooms.startChat": "Start a conversation",
  "rooms.unread": "{count} unread",
  "rooms.mentions": "{count} mentions",
  "rooms.accept": "Accept",
  "rooms.decline": "Decline",
  "rooms.invitedBy": "Invited by {user}",
  "rooms.empty": "Empty room",
  "rooms.subspaces": "Sub-spaces",

  "space.home": "Space home",
  "space.browse": "Browse the space",
  "space.addRooms": "Add rooms",
  "space.moveUp": "Move {name} up",
  "space.moveDown": "Move {name} down",
  "space.remove": "Remove {name} from the space",
  "space.join": "Join",
  "space.joined": "Joined",
  "space.open": "Open",
  "space.members": "{count} members",
  "space.member": "1 member",
  "space.nothing": "This space has no rooms you can see.",

  "room.select": "Choose a room in the list, or create one.",
  "room.members": "Members",
  "room.showMembers": "Show members",
  "room.hideMembers": "Hide members",
  "room.invite": "Invite",
  "room.settings": "Room settings",
  "room.leave": "Leave",
  "room.menu": "Room options",
  "room.mute": "Mute notifications",
  "room.leaveConfirm": "Leave {name}?",
  "room.loadingHistory": "Loading older messages…",
  "room.historyStart": "This is the beginning of the room.",
  "room.typing1": "{a} is typing…",
  "room.typing2": "{a} and {b} are typing…",
  "room.typingMany": "Several people are typing…",
  "room.seenBy": "Seen by {users}",
  "room.dropHere": "Drop files to send them",
  "room.invitedTitle": "You are invited to {name}",

  "composer.placeholder": "Message {name}…",
  "composer.send": "Send",
  "composer.attach": "Attach a file",
  "composer.replyingTo": "Replying to {user}",
  "composer.editing": "Editing a message",
  "composer.cancel": "Cancel",
  "composer.label": "Message",

  "msg.reply": "Reply",
  "msg.edit": "Edit",
  "msg.react": "React",
  "msg.delete": "Delete",
  "msg.deleteConfirm": "Delete this message?",
  "msg.edited": "(edited)",
  "msg.deleted": "Message deleted",
  "msg.encrypted": "Encrypted message (this client cannot read encrypted rooms yet)",
  "msg.unknown": "Unsupported event ({type})",
  "msg.actions": "Message actions",
  "msg.reactWith": "React with {key}",
  "msg.removeReaction": "Remove your reaction {key}",
  "msg.reactionBy": "{key} from {users}",
  "msg.download": "Download",
  "msg.downloadFile": "Download {name}",
  "msg.play": "Play the video",
  "msg.inReplyTo": "In reply to {user}",
  "msg.originalUnavailable": "Original message unavailable",
  "msg.sending": "Sending…",
  "msg.notSent": "Not sent",
  "msg.retry": "Retry",

  "event.join": "{user} joined",
  "event.leave": "{user} left",
  "event.invite": "{user} invited {target}",
  "event.kick": "{user} removed {target}",
  "event.ban": "{user} banned {target}",
  "event.name": "{user} named the room {name}",
  "event.topic": "{user} set the topic: {topic}",
  "event.create": "{user} created the room",
  "event.profile": "{user} changed their profile",

  "upload.progress": "Uploading {name}",
  "upload.failed": "Upload of {name} failed: {message}",
  "upload.tooLarge": "{name} is larger than the server accepts ({max}).",

  "members.joined": "Joined",
  "presence.online": "online",
  "presence.unavailable": "away",
  "presence.offline": "offline",
  "members.invited": "Invited",
  "members.count": "{count} members",

  "dialog.close": "Close",
  "dialog.cancel": "Cancel",
  "dialog.save": "Save",
  "dialog.create": "Create",

  "create.room.title": "Create a room",
  "create.space.title": "Create a space",
  "create.name": "Name",
  "create.topic": "Topic (optional)",
  "create.visibility": "Who can join",
  "create.private": "Private: by invitation only",
  "create.public": "Public: anyone can find and join it",
  "create.restricted": "Members of the space",
  "create.inSpace": "In the space",
  "create.noSpace": "No space",
  "create.dmTitle": "Start a conversation",

  "invite.title": "Invite to {name}",
  "invite.search": "Search people by name or user ID",
  "invite.none": "Nobody found.",
  "invite.send": "Invite {user}",
  "invite.sent": "Invited",
  "invite.message": "Invite",

  "directory.title": "Public rooms",
  "directory.search": "Search public rooms",
  "directory.none": "No public room found.",
  "directory.join": "Join {name}",
  "directory.more": "More rooms",

  "addToSpace.title": "Add rooms to {name}",
  "addToSpace.none": "All your rooms are already in this space.",
  "addToSpace.add": "Add {name}",

  "settings.title": "Settings",
  "settings.language": "Language",
  "settings.languageAuto": "Browser language",
  "settings.account": "Account",
  "settings.notifications": "Notifications",
  "settings.theme": "Theme",
  "settings.theme.system": "As the system",
  "settings.theme.light": "Light",
  "settings.theme.dark": "Dark",
  "settings.sessions": "Sessions",
  "settings.thisSession": "this session",
  "settings.lastSeen": "last seen {when}",
  "settings.signOutSession": "Sign out this session",
  "settings.confirmPassword": "Your password, to confirm",
  "settings.notifyDesktop": "Show notifications for direct messages, mentions and keywords",
  "settings.notifyDenied": "The browser blocks notifications for this site; allow them in its site settings.",
  "settings.notifyUnsupported": "This browser cannot show notifications.",
  "settings.displayName": "Display name",
  "settings.device": "Session {device}",
  "settings.logout": "Sign out",
  "settings.userMenu": "{user}: settings and sign out",

  "roomSettings.title": "Settings of {name}",
  "roomSettings.name": "Room name",
  "roomSettings.topic": "Topic",
  "roomSettings.joinRule": "Who can join",
  "roomSettings.roles": "Roles",
  "roomSettings.role.member": "Member",
  "roomSettings.role.moderator": "Moderator",
  "roomSettings.role.admin": "Admin",
  "roomSettings.join.invite": "Only people invited",
  "roomSettings.join.public": "Anyone",
  "roomSettings.join.knock": "Anyone can ask to join",
  "roomSettings.join.restricted": "Members of the space",
  "roomSettings.history": "Who can read the history",
  "roomSettings.history.shared": "Members, all of it",
  "roomSettings.history.invited": "Members, since they were invited",
  "roomSettings.history.joined": "Members, since they joined",
  "roomSettings.history.world_readable": "Anyone",

  "dmcall.voice": "Voice call",
  "dmcall.video": "Video call",
  "dmcall.incomingVoice": "Voice call from {name}",
  "dmcall.incomingVideo": "Video call from {name}",
  "dmcall.accept": "Accept",
  "dmcall.decline": "Decline",
  "dmcall.with": "Call with {name}",
  "dmcall.calling": "Calling {name}…",
  "dmcall.ringing": "Ringing…",
  "dmcall.connecting": "Connecting…",
  "dmcall.connected": "Connected · {time}",
  "dmcall.onHold": "On hold",
  "dmcall.ended": "Call ended",
  "dmcall.endedDeclined": "Call declined",
  "dmcall.endedNoAnswer": "Call ended: no answer",
  "dmcall.endedBusy": "Call ended: the other person is busy",
  "dmcall.endedFailed": "Call ended: the connection could not be made",
  "dmcall.endedLost": "Call ended: the connection was lost",
  "dmcall.endedNoMedia": "Call ended: no access to the camera or microphone",
  "dmcall.endedElsewhere": "Call answered on another device",
  "dmcall.error": "Call problem: {message}",
  "dmcall.remoteVideo": "Video of {name}",
  "dmcall.localVideo": "Your camera",
  "dmcall.mute": "Mute the microphone",
  "dmcall.cameraOff": "Turn the camera off",
  "dmcall.hangup": "Hang up",
  "call.title": "Call",
  "call.start": "Start a call",
  "call.join": "Join call",
  "call.inCall": "{count} in call",
  "call.hide": "Hide the call",
  "call.close": "Close",
  "call.leave": "Leave call",
  "call.retry": "Try again",
  "call.connecting": "Connecting to the call…",
  "call.empty": "Nobody is in the call yet.",
  "call.participants": "Participants",
  "call.controls": "Call controls",
  "call.mute": "Mute microphone",
  "call.unmute": "Unmute microphone",
  "call.cameraOff": "Turn camera off",
  "call.cameraOn": "Turn camera on",
  "call.shareScreen": "Share screen",
  "call.stopShare": "Stop sharing the screen",
  "call.devices": "Devices",
  "call.microphone": "Microphone",
  "call.camera": "Camera",
  "call.speaker": "Speaker",
  "call.micOff": "Microphone off",
  "call.you": "{name} (you)",
  "call.screenOf": "Screen of {name}",
  "call.notAllowed": "You may not publish this now.",
  "call.mediaError": "The device could not be used: {message}",
  "call.failed.noFocus": "This server offers no calls.",
  "call.failed.token": "The call service refused: {message}",
  "call.failed.sfu": "The connection to the call failed: {message}",
  "call.failed.other": "The call failed: {message}",
  "call.teaching": "Teaching mode",
  "call.teachingOn": "Teaching mode: moderators and the speakers they choose talk; the others listen.",
  "call.listener": "You are listening. Raise your hand to ask to speak.",
  "call.stage": "Stage",
  "call.audience": "Listeners",
  "call.raiseHand": "Raise hand",
  "call.lowerHand": "Lower hand",
  "call.handRaised": "Hand raised",
  "call.hands": "Raised hands",
  "call.speakers": "Speakers",
  "call.letSpeak": "Let {name} speak",
  "call.stopSpeaking": "Stop {name} speaking",
  "call.voiceChannel": "Voice channel",
  "call.ongoing": "In a call in {room}",
  "call.return": "Return to the call",
  "create.voice": "Voice channel: opening it shows the call",
};

export type MessageKey = keyof typeof en;
type Dict = Record<MessageKey, string>;

const fr: Dict = {
  "app.name": "Salon",
  "app.loading": "Chargement…",
  "app.connecting": "Connexion au serveur…",
  "app.syncError": "La connexion au serveur est interrompue ; nouvelle tentative…",
  "app.syncUnsupported": "Ce serveur ne propose pas encore les salons et les messages.",

  "auth.login.title": "Connexion",
  "auth.login.submit": "Se connecter",
  "auth.login.busy": "Connexion…",
  "auth.login.sso": "Se connecter avec l’authentification unique",
  "auth.login.toRegister": "Créer un compte",
  "auth.login.failed": "Nom d’utilisateur ou mot de passe incorrect.",
  "auth.register.title": "Créer un compte",
  "auth.register.submit": "Créer le compte",
  "auth.register.busy": "Création du compte…",
  "auth.register.toLogin": "J’ai déjà un compte",
  "auth.register.closed": "Ce serveur n’accepte pas de nouveaux comptes.",
  "auth.register.unsupported": "Ce serveur demande une étape d’inscription que ce client ne sait pas faire ({stages}).",
  "auth.register.mismatch": "Les mots de passe diffèrent.",
  "auth.register.tokenInvalid": "Ce jeton d’inscription n’est pas valide.",
  "auth.username": "Nom d’utilisateur",
  "auth.password": "Mot de passe",
  "auth.passwordConfirm": "Confirmez le mot de passe",
  "auth.token": "Jeton d’inscription",
  "auth.server": "Serveur : {server}",
  "auth.sessionEnded": "Votre session a pris fin ; reconnectez-vous.",

  "error.generic": "Une erreur est survenue : {message}",
  "error.network": "Le serveur est injoignable.",
  "error.rateLimited": "Trop de tentatives ; réessayez dans un instant.",

  "nav.home": "Accueil",
  "nav.spaces": "Espaces",
  "nav.rooms": "Salons",
  "nav.skipComposer": "Aller à la zone de message",
  "nav.skipList": "Aller à la liste des salons",
  "search.open": "Rechercher des messages",
  "search.title": "Rechercher dans {name}",
  "search.label": "Mots à trouver",
  "search.submit": "Rechercher",
  "search.none": "Aucun message ne correspond.",
  "search.count": "{count} messages trouvés",
  "threads.open": "Fils de discussion",
  "threads.title": "Fils de discussion de {name}",
  "threads.none": "Pas encore de fil dans ce salon.",
  "threads.count": "{count} réponses",
  "threads.thread": "Fil de discussion",
  "threads.replies": "Réponses",
  "threads.reply": "Répondre dans le fil",
  "threads.back": "Tous les fils",
  "switcher.title": "Aller à un salon",
  "switcher.label": "Nom du salon",
  "switcher.none": "Aucun salon de ce nom.",
  "nav.createSpace": "Créer un espace",
  "nav.settings": "Paramètres",
  "nav.explore": "Explorer les salons publics",
  "nav.back": "Retour à la liste des salons",

  "rooms.title": "Salons",
  "rooms.people": "Personnes",
  "rooms.invites": "Invitations",
  "rooms.none": "Aucun salon pour l’instant.",
  "rooms.filter": "Filtrer les salons",
  "rooms.create": "Nouveau salon",
  "rooms.startChat": "Démarrer une conversation",
  "rooms.unread": "{count} non lus",
  "rooms.mentions": "{count} mentions",
  "rooms.accept": "Accepter",
  "rooms.decline": "Refuser",
  "rooms.invitedBy": "Invitation de {user}",
  "rooms.empty": "Salon vide",
  "rooms.subspaces": "Sous-espaces",

  "space.home": "Accueil de l’espace",
  "space.browse": "Parcourir l’espace",
  "space.addRooms": "Ajouter des salons",
  "space.moveUp": "Monter {name}",
  "space.moveDown": "Descendre {name}",
  "space.remove": "Retirer {name} de l’espace",
  "space.join": "Rejoindre",
  "space.joined": "Rejoint",
  "space.open": "Ouvrir",
  "space.members": "{count} membres",
  "space.member": "1 membre",
  "space.nothing": "Cet espace ne contient aucun salon visible pour vous.",

  "room.select": "Choisissez un salon dans la liste, ou créez-en un.",
  "room.members": "Membres",
  "room.showMembers": "Afficher les membres",
  "room.hideMembers": "Masquer les membres",
  "room.invite": "Inviter",
  "room.settings": "Paramètres du salon",
  "room.leave": "Quitter",
  "room.menu": "Options du salon",
  "room.mute": "Désactiver les notifications",
  "room.leaveConfirm": "Quitter {name} ?",
  "room.loadingHistory": "Chargement des messages précédents…",
  "room.historyStart": "C’est le début du salon.",
  "room.typing1": "{a} écrit…",
  "room.typing2": "{a} et {b} écrivent…",
  "room.typingMany": "Plusieurs personnes écrivent…",
  "room.seenBy": "Vu par {users}",
  "room.dropHere": "Déposez des fichiers pour les envoyer",
  "room.invitedTitle": "Vous êtes invité·e dans {name}",

  "composer.placeholder": "Message pour {name}…",
  "composer.send": "Envoyer",
  "composer.attach": "Joindre un fichier",
  "composer.replyingTo": "Réponse à {user}",
  "composer.editing": "Modification d’un message",
  "composer.cancel": "Annuler",
  "composer.label": "Message",

  "msg.reply": "Répondre",
  "msg.edit": "Modifier",
  "msg.react": "Réagir",
  "msg.delete": "Supprimer",
  "msg.deleteConfirm": "Supprimer ce message ?",
  "msg.edited": "(modifié)",
  "msg.deleted": "Message supprimé",
  "msg.encrypted": "Message chiffré (ce client ne lit pas encore les salons chiffrés)",
  "msg.unknown": "Événement non pris en charge ({type})",
  "msg.actions": "Actions sur le message",
  "msg.reactWith": "Réagir avec {key}",
  "msg.removeReaction": "Retirer votre réaction {key}",
  "msg.reactionBy": "{key} de {users}",
  "msg.download": "Télécharger",
  "msg.downloadFile": "Télécharger {name}",
  "msg.play": "Lire la vidéo",
  "msg.inReplyTo": "En réponse à {user}",
  "msg.originalUnavailable": "Message d’origine indisponible",
  "msg.sending": "Envoi…",
  "msg.notSent": "Non envoyé",
  "msg.retry": "Réessayer",

  "event.join": "{user} a rejoint le salon",
  "event.leave": "{user} est parti·e",
  "event.invite": "{user} a invité {target}",
  "event.kick": "{user} a retiré {target}",
  "event.ban": "{user} a banni {target}",
  "event.name": "{user} a nommé le salon {name}",
  "event.topic": "{user} a défini le sujet : {topic}",
  "event.create": "{user} a créé le salon",
  "event.profile": "{user} a modifié son profil",

  "upload.progress": "Envoi de {name}",
  "upload.failed": "L’envoi de {name} a échoué : {message}",
  "upload.tooLarge": "{name} dépasse la taille acceptée par le serveur ({max}).",

  "members.joined": "Membres",
  "presence.online": "en ligne",
  "presence.unavailable": "absent·e",
  "presence.offline": "hors ligne",
  "members.invited": "Invité·es",
  "members.count": "{count} membres",

  "dialog.close": "Fermer",
  "dialog.cancel": "Annuler",
  "dialog.save": "Enregistrer",
  "dialog.create": "Créer",

  "create.room.title": "Créer un salon",
  "create.space.title": "Créer un espace",
  "create.name": "Nom",
  "create.topic": "Sujet (facultatif)",
  "create.visibility": "Qui peut rejoindre",
  "create.private": "Privé : sur invitation seulement",
  "create.public": "Public : tout le monde peut le trouver et le rejoindre",
  "create.restricted": "Les membres de l’espace",
  "create.inSpace": "Dans l’espace",
  "create.noSpace": "Aucun espace",
  "create.dmTitle": "Démarrer une conversation",

  "invite.title": "Inviter dans {name}",
  "invite.search": "Chercher une personne par nom ou identifiant",
  "invite.none": "Personne trouvée.",
  "invite.send": "Inviter {user}",
  "invite.sent": "Invité·e",
  "invite.message": "Inviter",

  "directory.title": "Salons publics",
  "directory.search": "Chercher un salon public",
  "directory.none": "Aucun salon public trouvé.",
  "directory.join": "Rejoindre {name}",
  "directory.more": "Plus de salons",

  "addToSpace.title": "Ajouter des salons à {name}",
  "addToSpace.none": "Tous vos salons sont déjà dans cet espace.",
  "addToSpace.add": "Ajouter {name}",

  "settings.title": "Paramètres",
  "settings.language": "Langue",
  "settings.languageAuto": "Langue du navigateur",
  "settings.account": "Compte",
  "settings.notifications": "Notifications",
  "settings.theme": "Thème",
  "settings.theme.system": "Comme le système",
  "settings.theme.light": "Clair",
  "settings.theme.dark": "Sombre",
  "settings.sessions": "Sessions",
  "settings.thisSession": "cette session",
  "settings.lastSeen": "vue {when}",
  "settings.signOutSession": "Déconnecter cette session",
  "settings.confirmPassword": "Votre mot de passe, pour confirmer",
  "settings.notifyDesktop": "Afficher les notifications des messages directs, mentions et mots-clés",
  "settings.notifyDenied": "Le navigateur bloque les notifications de ce site ; autorisez-les dans ses paramètres.",
  "settings.notifyUnsupported": "Ce navigateur ne peut pas afficher de notifications.",
  "settings.displayName": "Nom affiché",
  "settings.device": "Session {device}",
  "settings.logout": "Se déconnecter",
  "settings.userMenu": "{user} : paramètres et déconnexion",

  "roomSettings.title": "Paramètres de {name}",
  "roomSettings.name": "Nom du salon",
  "roomSettings.joinRule": "Qui peut rejoindre",
  "roomSettings.roles": "Rôles",
  "roomSettings.role.member": "Membre",
  "roomSettings.role.moderator": "Modérateur·rice",
  "roomSettings.role.admin": "Admin",
  "roomSettings.join.invite": "Seulement les personnes invitées",
  "roomSettings.join.public": "Tout le monde",
  "roomSettings.join.knock": "Tout le monde peut demander à rejoindre",
  "roomSettings.join.restricted": "Les membres de l’espace",
  "roomSettings.history": "Qui peut lire l’historique",
  "roomSettings.history.shared": "Les membres, en entier",
  "roomSettings.history.invited": "Les membres, depuis leur invitation",
  "roomSettings.history.joined": "Les membres, depuis leur arrivée",
  "roomSettings.history.world_readable": "Tout le monde",
  "roomSettings.topic": "Sujet",

  "dmcall.voice": "Appel audio",
  "dmcall.video": "Appel vidéo",
  "dmcall.incomingVoice": "Appel audio de {name}",
  "dmcall.incomingVideo": "Appel vidéo de {name}",
  "dmcall.accept": "Répondre",
  "dmcall.decline": "Refuser",
  "dmcall.with": "Appel avec {name}",
  "dmcall.calling": "Appel de {name} en cours…",
  "dmcall.ringing": "Ça sonne…",
  "dmcall.connecting": "Connexion…",
  "dmcall.connected": "En communication · {time}",
  "dmcall.onHold": "En attente",
  "dmcall.ended": "Appel terminé",
  "dmcall.endedDeclined": "Appel refusé",
  "dmcall.endedNoAnswer": "Appel terminé : pas de réponse",
  "dmcall.endedBusy": "Appel terminé : votre correspondant est occupé",
  "dmcall.endedFailed": "Appel terminé : la connexion n’a pas pu être établie",
  "dmcall.endedLost": "Appel terminé : la connexion a été perdue",
  "dmcall.endedNoMedia": "Appel terminé : pas d’accès à la caméra ou au micro",
  "dmcall.endedElsewhere": "Appel pris sur un autre appareil",
  "dmcall.error": "Problème d’appel : {message}",
  "dmcall.remoteVideo": "Vidéo de {name}",
  "dmcall.localVideo": "Votre caméra",
  "dmcall.mute": "Couper le micro",
  "dmcall.cameraOff": "Couper la caméra",
  "dmcall.hangup": "Raccrocher",
  "call.title": "Appel",
  "call.start": "Démarrer un appel",
  "call.join": "Rejoindre l’appel",
  "call.inCall": "{count} dans l’appel",
  "call.hide": "Masquer l’appel",
  "call.close": "Fermer",
  "call.leave": "Quitter l’appel",
  "call.retry": "Réessayer",
  "call.connecting": "Connexion à l’appel…",
  "call.empty": "Personne n’est encore dans l’appel.",
  "call.participants": "Participants",
  "call.controls": "Commandes de l’appel",
  "call.mute": "Couper le micro",
  "call.unmute": "Activer le micro",
  "call.cameraOff": "Couper la caméra",
  "call.cameraOn": "Activer la caméra",
  "call.shareScreen": "Partager l’écran",
  "call.stopShare": "Arrêter le partage d’écran",
  "call.devices": "Périphériques",
  "call.microphone": "Micro",
  "call.camera": "Caméra",
  "call.speaker": "Haut-parleur",
  "call.micOff": "Micro coupé",
  "call.you": "{name} (vous)",
  "call.screenOf": "Écran de {name}",
  "call.notAllowed": "Vous ne pouvez pas publier ceci pour l’instant.",
  "call.mediaError": "Le périphérique n’a pas pu être utilisé : {message}",
  "call.failed.noFocus": "Ce serveur ne propose pas d’appels.",
  "call.failed.token": "Le service d’appel a refusé : {message}",
  "call.failed.sfu": "La connexion à l’appel a échoué : {message}",
  "call.failed.other": "L’appel a échoué : {message}",
  "call.teaching": "Mode classe",
  "call.teachingOn": "Mode classe : les modérateurs et les personnes à qui ils donnent la parole parlent ; les autres écoutent.",
  "call.listener": "Vous écoutez. Levez la main pour demander la parole.",
  "call.stage": "Scène",
  "call.audience": "Auditeurs",
  "call.raiseHand": "Lever la main",
  "call.lowerHand": "Baisser la main",
  "call.handRaised": "Main levée",
  "call.hands": "Mains levées",
  "call.speakers": "Intervenants",
  "call.letSpeak": "Donner la parole à {name}",
  "call.stopSpeaking": "Retirer la parole à {name}",
  "call.voiceChannel": "Salon vocal",
  "call.ongoing": "En appel dans {room}",
  "call.return": "Revenir à l’appel",
  "create.voice": "Salon vocal : l’ouvrir affiche l’appel",
};

export const languages = { en: "English", fr: "Français" } as const;
export type Lang = keyof typeof languages;
const dicts: Record<Lang, Dict> = { en, fr };

const storageKey = "salon.lang";

/** The language the person chose in the settings, or null for the browser's. */
export function chosenLang(): Lang | null {
  try {
    const v = localStorage.getItem(storageKey);
    return v === "en" || v === "fr" ? v : null;
  } catch {
    return null;
  }
}

/** The first of the browser's languages that the client has, else English. */
export function browserLang(): Lang {
  const prefs = navigator.languages?.length ? navigator.languages : [navigator.language];
  for (const p of prefs) {
    const base = (p ?? "").toLowerCase().split("-")[0];
    if (base === "fr" || base === "en") return base;
  }
  return "en";
}

let current: Lang = chosenLang() ?? browserLang();
const listeners = new Set<() => void>();

export function lang(): Lang {
  return current;
}

export function setLang(choice: Lang | null): void {
  try {
    if (choice) localStorage.setItem(storageKey, choice);
    else localStorage.removeItem(storageKey);
  } catch {
    // Private browsing: the choice lasts for this page only.
  }
  current = choice ?? browserLang();
  document.documentElement.lang = current;
  for (const l of listeners) l();
}

/** Translates key, replacing {name} placeholders with vars. */
export function t(key: MessageKey, vars?: Record<string, string | number>): string {
  let s = dicts[current][key] ?? en[key] ?? key;
  if (vars) {
    s = s.replace(/\{(\w+)\}/g, (m, name: string) => (name in vars ? String(vars[name]) : m));
  }
  return s;
}

/** Formats a byte count for people, in the current language. */
export function formatBytes(n: number): string {
  const units = current === "fr" ? ["o", "Ko", "Mo", "Go"] : ["B", "KB", "MB", "GB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  const num = new Intl.NumberFormat(current, { maximumFractionDigits: i === 0 ? 0 : 1 }).format(v);
  return `${num} ${units[i]}`;
}

export function formatTime(ts: number): string {
  return new Intl.DateTimeFormat(current, { hour: "2-digit", minute: "2-digit" }).format(ts);
}

export function formatDay(ts: number): string {
  return new Intl.DateTimeFormat(current, { weekday: "long", day: "numeric", month: "long", year: "numeric" }).format(ts);
}

/** Re-renders the calling component when the language changes. */
export function useLang(): Lang {
  const [, set] = useState(0);
  useEffect(() => {
    const l = () => set((n) => n + 1);
    listeners.add(l);
    return () => {
      listeners.delete(l);
    };
  }, []);
  return current;
}

document.documentElement.lang = current;
