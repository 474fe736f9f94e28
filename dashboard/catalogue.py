"""The dashboard's texts: English wording of keyed texts, and every text in German.

Texts are looked up by their English wording (or by a key such as ``action:pause`` where one
English word serves several places). Values in braces are filled in by ``Translator``. A test
checks that every text used in the templates and the code has a German entry.

A plain module rather than gettext catalogues: two languages and about two hundred texts need
no compile step, and a missing German text is a failing test, not a silent fallback.
"""

from __future__ import annotations

ENGLISH: dict[str, str] = {
    "action:start": "Start",
    "action:pause": "Pause",
    "action:resume": "Resume",
    "action:stop": "Stop",
    "action:new-phase": "New phase",
    "action:archive": "Archive",
    "yes:start": "Yes, start",
    "yes:pause": "Yes, pause",
    "yes:resume": "Yes, resume",
    "yes:stop": "Yes, stop",
    "yes:new-phase": "Yes, start a new phase",
    "yes:archive": "Yes, archive",
    "confirm:start": "Start “{name}”?",
    "confirm:pause": "Pause “{name}”?",
    "confirm:resume": "Resume “{name}”?",
    "confirm:stop": "Stop “{name}”?",
    "confirm:new-phase": "Start a new phase of “{name}”?",
    "confirm:archive": "Archive “{name}”?",
    "explain:start": (
        "Visitors start to be enrolled and counted. From then on variant keys and weights are "
        "fixed and coverage can only grow; changing them later needs a new phase."
    ),
    "explain:pause": (
        "No new visitors are enrolled while the experiment is paused; they see the control. "
        "Resume it to continue where it stopped."
    ),
    "explain:resume": "Enrolment continues; the counts of this phase carry on.",
    "explain:stop": (
        "Enrolment ends for good. A winner is shown to every visitor from now on; without one "
        "everybody sees the control. Per-visitor records are deleted after the retention period."
    ),
    "explain:new-phase": (
        "Every visitor is randomised again with a new salt and the counts start at zero. Use "
        "it to change weights or coverage, or after fixing a broken set-up."
    ),
    "explain:archive": "The experiment is finished and read only; it can then be deleted.",
}

GERMAN: dict[str, str] = {
    # --- keyed texts (see ENGLISH) ---
    "action:start": "Starten",
    "action:pause": "Pausieren",
    "action:resume": "Fortsetzen",
    "action:stop": "Beenden",
    "action:new-phase": "Neue Phase",
    "action:archive": "Archivieren",
    "yes:start": "Ja, starten",
    "yes:pause": "Ja, pausieren",
    "yes:resume": "Ja, fortsetzen",
    "yes:stop": "Ja, beenden",
    "yes:new-phase": "Ja, neue Phase starten",
    "yes:archive": "Ja, archivieren",
    "confirm:start": "„{name}“ starten?",
    "confirm:pause": "„{name}“ pausieren?",
    "confirm:resume": "„{name}“ fortsetzen?",
    "confirm:stop": "„{name}“ beenden?",
    "confirm:new-phase": "Neue Phase von „{name}“ starten?",
    "confirm:archive": "„{name}“ archivieren?",
    "explain:start": (
        "Besucher werden ab jetzt aufgenommen und gezählt. Danach sind Varianten und Gewichte "
        "fest und die Abdeckung kann nur wachsen; Änderungen daran brauchen eine neue Phase."
    ),
    "explain:pause": (
        "Solange das Experiment pausiert, werden keine neuen Besucher aufgenommen; sie sehen "
        "die Kontrolle. Beim Fortsetzen geht es dort weiter, wo es aufgehört hat."
    ),
    "explain:resume": "Die Aufnahme geht weiter; die Zahlen dieser Phase laufen weiter.",
    "explain:stop": (
        "Die Aufnahme endet endgültig. Ein Gewinner wird ab jetzt allen Besuchern gezeigt; "
        "ohne Gewinner sehen alle die Kontrolle. Besucherdaten werden nach der Aufbewahrungs"
        "frist gelöscht."
    ),
    "explain:new-phase": (
        "Alle Besucher werden mit einem neuen Salt neu verteilt und die Zahlen beginnen bei "
        "null. Dafür gedacht, Gewichte oder Abdeckung zu ändern oder nach einem behobenen "
        "Fehler neu zu beginnen."
    ),
    "explain:archive": (
        "Das Experiment ist abgeschlossen und nur noch lesbar; danach kann es gelöscht werden."
    ),
    # --- statuses, goal kinds, audit actions, confirmations ---
    "Draft": "Entwurf",
    "Running": "Läuft",
    "Paused": "Pausiert",
    "Stopped": "Beendet",
    "Archived": "Archiviert",
    "Conversion rate": "Conversion-Rate",
    "Net revenue per visitor": "Nettoumsatz pro Besucher",
    "Margin per visitor": "Deckungsbeitrag pro Besucher",
    "created": "angelegt",
    "edited": "bearbeitet",
    "started": "gestartet",
    "paused": "pausiert",
    "resumed": "fortgesetzt",
    "stopped": "beendet",
    "archived": "archiviert",
    "started a new phase": "neue Phase gestartet",
    "Experiment started.": "Experiment gestartet.",
    "Experiment paused.": "Experiment pausiert.",
    "Experiment resumed.": "Experiment fortgesetzt.",
    "Experiment stopped.": "Experiment beendet.",
    "New phase started; counts begin at zero.": (
        "Neue Phase gestartet; die Zahlen beginnen bei null."
    ),
    "Experiment archived.": "Experiment archiviert.",
    # --- result sentences ---
    "{variant} converts {points} percentage points more often ({rate} vs {control_rate})": (
        "{variant} konvertiert um {points} Prozentpunkte häufiger ({rate} statt {control_rate})"
    ),
    "{variant} converts {points} percentage points less often ({rate} vs {control_rate})": (
        "{variant} konvertiert um {points} Prozentpunkte seltener ({rate} statt {control_rate})"
    ),
    "{variant} earns about {amount} {what} per visitor": (
        "{variant} bringt etwa {amount} {what} pro Besucher"
    ),
    "{chance} likely better": "zu {chance} wahrscheinlich besser",
    "{chance} likely worse": "zu {chance} wahrscheinlich schlechter",
    "Conclusive.": "Das Ergebnis ist belastbar.",
    "Not conclusive yet.": "Noch nicht belastbar.",
    "No data yet for {variant}.": "Noch keine Daten für {variant}.",
    "No data yet.": "Noch keine Daten.",
    "Not enough data yet.": "Noch nicht genug Daten.",
    "Results unavailable: {reason}": "Ergebnisse nicht verfügbar: {reason}",
    "Counts values sent from browsers (can be forged)": ("Zählt Werte aus dem Browser (fälschbar)"),
    "margin": "Deckungsbeitrag",
    "net revenue": "Nettoumsatz",
    "{value} pp": "{value} Pp.",
    "{lower} to {upper}": "{lower} bis {upper}",
    "{what}, cumulative, with 95% interval": "{what}, kumuliert, mit 95-%-Intervall",
    "Visitors, cumulative": "Besucher, kumuliert",
    "{title} over {days} days; latest: {last}.": "{title} über {days} Tage; zuletzt: {last}.",
    "{variant} / {control}": "{variant} / {control}",
    "p-value": "p-Wert",
    "fixed horizon": "fester Horizont",
    "sequential, always valid": "sequenziell, jederzeit gültig",
    "group sequential, over the planned size": "gruppensequenziell, über die geplante Größe",
    "BH-adjusted": "BH-korrigiert",
    "p-values adjusted for {count} comparisons (Holm).": (
        "p-Werte für {count} Vergleiche korrigiert (Holm)."
    ),
    "Too small to judge: fewer than {visitors} visitors in a variant or {conversions} "
    "conversions.": (
        "Zu klein für ein Urteil: weniger als {visitors} Besucher in einer Variante oder "
        "{conversions} Conversions."
    ),
    "The control has no data for {goal} yet, so the sample size is unknown.": (
        "Die Kontrolle hat noch keine Daten für {goal}, daher ist die nötige Stichprobe unbekannt."
    ),
    "Enough visitors to detect a change of {effect} in {goal}.": (
        "Genug Besucher, um eine Änderung von {effect} bei {goal} zu erkennen."
    ),
    "About {missing} more visitors are needed to detect a change of {effect} in {goal}; at "
    "the current traffic no end date can be estimated.": (
        "Noch etwa {missing} Besucher nötig, um eine Änderung von {effect} bei {goal} zu "
        "erkennen; beim aktuellen Traffic lässt sich kein Enddatum schätzen."
    ),
    "About {missing} more visitors are needed to detect a change of {effect} in {goal}; at "
    "the traffic of the last {days} days that is around {date}.": (
        "Noch etwa {missing} Besucher nötig, um eine Änderung von {effect} bei {goal} zu "
        "erkennen; beim Traffic der letzten {days} Tage etwa am {date}."
    ),
    "The variants did not get the share of visitors they were planned for (p = {p}). A gap "
    "this large happens by chance less than once in a thousand experiments, so something in "
    "the set-up loses or adds visitors in one variant: a redirect, a caching layer, a script "
    "error, or bots. Do not trust these results until the cause is found.": (
        "Die Varianten haben nicht den geplanten Anteil der Besucher bekommen (p = {p}). Eine "
        "so große Abweichung entsteht durch Zufall seltener als in einem von tausend "
        "Experimenten; etwas im Aufbau verliert oder gewinnt Besucher in einer Variante: eine "
        "Weiterleitung, ein Cache, ein Skriptfehler oder Bots. Vertrauen Sie diesen Ergebnissen "
        "erst, wenn die Ursache gefunden ist."
    ),
    "The split of visitors matches the plan (sample ratio check passed, p = {p}).": (
        "Die Verteilung der Besucher entspricht dem Plan (Sample-Ratio-Prüfung bestanden, p = {p})."
    ),
    "fields: {fields}": "Felder: {fields}",
    "winner: {winner}": "Gewinner: {winner}",
    "Not started yet": "Noch nicht gestartet",
    "Started {date}": "Gestartet am {date}",
    "Ran from {start} to {end}": "Lief vom {start} bis {end}",
    "windows close {date}, figures final {final}": (
        "Zeitfenster schließen am {date}, Zahlen endgültig am {final}"
    ),
    "Matured figures: visitors enrolled up to {date}, after their {days}-day window and "
    "return period. Provisional, on all {visitors} visitors so far: {sentence}": (
        "Ausgereifte Zahlen: Besucher, die bis {date} aufgenommen wurden, nach ihrem "
        "{days}-tägigen Zeitfenster samt Rückgabefrist. Vorläufig, auf alle bisher {visitors} "
        "Besucher: {sentence}"
    ),
    # --- page furniture ---
    "Skip to content": "Zum Inhalt springen",
    "Main": "Hauptnavigation",
    "Breadcrumb": "Brotkrümelpfad",
    "Experiments": "Experimente",
    "New experiment": "Neues Experiment",
    "editor": "Bearbeiter",
    "viewer": "Leser",
    "Sign in": "Anmelden",
    "Sign out": "Abmelden",
    "You are signed out.": "Sie sind abgemeldet.",
    "Self-hosted A/B testing for online shops": "Selbst gehostete A/B-Tests für Onlineshops",
    "Token": "Token",
    "Use an API token with the viewer or editor role. Viewers read results; editors also run "
    "experiments.": (
        "Melden Sie sich mit einem API-Token der Rolle Leser (viewer) oder Bearbeiter (editor) "
        "an. Leser sehen die Ergebnisse; Bearbeiter steuern auch die Experimente."
    ),
    "Development mode without tokens: leave the field empty to continue as the editor “dev”.": (
        "Entwicklungsmodus ohne Tokens: Feld leer lassen, um als Bearbeiter „dev“ fortzufahren."
    ),
    "Development server: the editor token is printed when the server starts and kept in this "
    "file:": (
        "Entwicklungsserver: Das Token für Bearbeiter wird beim Start ausgegeben und steht in "
        "dieser Datei:"
    ),
    "Tokens are set by whoever runs this server (SPLITWERK_TOKENS); ask them for one.": (
        "Tokens vergibt, wer diesen Server betreibt (SPLITWERK_TOKENS); fragen Sie dort nach einem."
    ),
    "This token is not valid for the dashboard.": "Dieses Token gilt nicht für das Dashboard.",
    "Back to the experiments": "Zurück zu den Experimenten",
    "There is no experiment {key}.": "Es gibt kein Experiment {key}.",
    "Unknown status filter.": "Unbekannter Statusfilter.",
    "viewers can read results; changing experiments needs an editor token": (
        "Leser sehen die Ergebnisse; Änderungen an Experimenten brauchen ein Bearbeiter-Token"
    ),
    "the form expired or came from another site; reload the page and retry": (
        "das Formular ist abgelaufen oder kam von einer anderen Seite; bitte die Seite neu laden "
        "und noch einmal versuchen"
    ),
    "Bad Request": "Ungültige Anfrage",
    "Forbidden": "Nicht erlaubt",
    "Not Found": "Nicht gefunden",
    "Service Unavailable": "Dienst nicht verfügbar",
    "The data store does not answer right now. Please try again in a few seconds.": (
        "Der Datenspeicher antwortet gerade nicht. Bitte versuchen Sie es in ein paar Sekunden "
        "noch einmal."
    ),
    "Method Not Allowed": "Methode nicht erlaubt",
    # --- experiment list ---
    "Search": "Suche",
    "Name, key or hypothesis": "Name, Schlüssel oder Hypothese",
    "Status": "Status",
    "All": "Alle",
    "Filter": "Filtern",
    "{count} experiments": "{count} Experimente",
    "1 experiment": "1 Experiment",
    "Best challenger": "Beste Testvariante",
    "Experiment": "Experiment",
    "Days running": "Laufzeit (Tage)",
    "Enrolled visitors": "Aufgenommene Besucher",
    "Leading on the primary goal": "Vorne beim Hauptziel",
    "Uplift": "Uplift",
    "Chance to beat control": "Chance, die Kontrolle zu schlagen",
    "Checks": "Prüfungen",
    "conclusive": "belastbar",
    "Sample ratio mismatch": "Sample-Ratio-Mismatch",
    "OK": "OK",
    "No experiment matches the filter.": "Kein Experiment passt zum Filter.",
    "No experiments yet.": "Noch keine Experimente.",
    # --- experiment page ---
    "Phase {phase}": "Phase {phase}",
    "Winner: {winner}": "Gewinner: {winner}",
    "Actions": "Aktionen",
    "Edit": "Bearbeiten",
    "You are signed in as a viewer: you can read everything; running the experiment needs an "
    "editor token.": (
        "Sie sind als Leser angemeldet: Sie sehen alles; das Experiment zu steuern braucht ein "
        "Bearbeiter-Token."
    ),
    "This experiment is a draft: it has no visitors and no results until it starts.": (
        "Dieses Experiment ist ein Entwurf: Bis zum Start hat es keine Besucher und keine "
        "Ergebnisse."
    ),
    "Sample ratio mismatch: the results are not trustworthy": (
        "Sample-Ratio-Mismatch: Die Ergebnisse sind nicht vertrauenswürdig"
    ),
    "Overview": "Überblick",
    "Primary goal: {goal}": "Hauptziel: {goal}",
    "Progress": "Fortschritt",
    "Share of the visitors needed": "Anteil der nötigen Besucher",
    "Needed per variant": "Nötig pro Variante",
    "Still needed": "Noch nötig",
    "Estimated end": "Voraussichtliches Ende",
    "Traffic split": "Verteilung der Besucher",
    "See the warning above.": "Siehe die Warnung oben.",
    "Variant": "Variante",
    "Visitors": "Besucher",
    "Planned": "Geplant",
    "Actual": "Tatsächlich",
    "Visitors over time": "Besucher im Zeitverlauf",
    "Results per goal": "Ergebnisse pro Ziel",
    "Colour marks only conclusive results: green is a proven improvement, red a proven loss. "
    "Intervals are 95% intervals of the difference to the control.": (
        "Farbe markiert nur belastbare Ergebnisse: Grün ist eine nachgewiesene Verbesserung, "
        "Rot ein nachgewiesener Verlust. Intervalle sind 95-%-Intervalle des Unterschieds zur "
        "Kontrolle."
    ),
    "primary": "Hauptziel",
    "Variants for {goal}": "Varianten für {goal}",
    "Conversions": "Conversions",
    "Rate": "Rate",
    "Margin / visitor": "Deckungsbeitrag / Besucher",
    "Revenue / visitor": "Umsatz / Besucher",
    "Relative": "Relativ",
    "95% interval": "95-%-Intervall",
    "control": "Kontrolle",
    "adj.": "korr.",
    "baseline": "Vergleichsbasis",
    "Chart data as a table": "Diagrammdaten als Tabelle",
    "Day": "Tag",
    "Who responds?": "Wer reagiert?",
    "The same comparison within each segment. With many segments some look different by "
    "chance, so p-values here are adjusted over all judged segments (Benjamini–Hochberg), and "
    "small segments are shown without a verdict.": (
        "Derselbe Vergleich innerhalb jedes Segments. Bei vielen Segmenten wirken manche rein "
        "zufällig anders; die p-Werte sind daher über alle beurteilten Segmente korrigiert "
        "(Benjamini–Hochberg), und kleine Segmente werden ohne Urteil gezeigt."
    ),
    "By {attribute}": "Nach {attribute}",
    "{judged} judged, {unjudged} too small": "{judged} beurteilt, {unjudged} zu klein",
    "{goal} by {attribute}": "{goal} nach {attribute}",
    "Visitors (variant / control)": "Besucher (Variante / Kontrolle)",
    "Control": "Kontrolle",
    "too small": "zu klein",
    "Audit trail": "Änderungsprotokoll",
    "When": "Wann",
    "Who": "Wer",
    "What": "Was",
    "Details": "Details",
    "No changes recorded.": "Keine Änderungen protokolliert.",
    # --- confirmations ---
    "Winner": "Gewinner",
    "No winner: everybody sees the control": "Kein Gewinner: alle sehen die Kontrolle",
    "Optional changes for the new phase": "Optionale Änderungen für die neue Phase",
    "Coverage (% of eligible visitors)": "Abdeckung (% der passenden Besucher)",
    "Weight of {variant}": "Gewicht von {variant}",
    "I understand that every count starts again at zero.": (
        "Mir ist klar, dass alle Zahlen wieder bei null beginnen."
    ),
    "Cancel": "Abbrechen",
    # --- form ---
    "Edit {key}": "{key} bearbeiten",
    "While an experiment runs, variant keys and weights are fixed and coverage can only grow, "
    "so that no enrolled visitor changes variant. Locked fields are greyed out; a new phase "
    "changes them.": (
        "Solange ein Experiment läuft, sind Varianten und Gewichte fest und die Abdeckung kann "
        "nur wachsen, damit kein aufgenommener Besucher die Variante wechselt. Gesperrte Felder "
        "sind ausgegraut; eine neue Phase ändert sie."
    ),
    "Please correct the marked fields.": "Bitte korrigieren Sie die markierten Felder.",
    "Basics": "Grunddaten",
    "Key": "Schlüssel",
    "Lowercase letters, digits, - and _; used by the shop's code. Cannot change later.": (
        "Kleinbuchstaben, Ziffern, - und _; der Shop-Code verwendet ihn. Später nicht änderbar."
    ),
    "Name": "Name",
    "Hypothesis": "Hypothese",
    "Variants": "Varianten",
    "The first variant is the control. Weights are relative (1 and 1 is a 50/50 split). The "
    "payload is JSON the shop receives with the variant.": (
        "Die erste Variante ist die Kontrolle. Gewichte sind relativ (1 und 1 teilt 50/50). "
        "Die Nutzdaten sind JSON, das der Shop mit der Variante erhält."
    ),
    "Key of variant {number}": "Schlüssel der Variante {number}",
    "Weight": "Gewicht",
    "Payload (JSON)": "Nutzdaten (JSON)",
    "Add a variant": "Variante hinzufügen",
    "Audience": "Zielgruppe",
    "Coverage: share of eligible visitors who enter (%)": (
        "Abdeckung: Anteil der passenden Besucher, die teilnehmen (%)"
    ),
    "Coverage slider": "Schieberegler für die Abdeckung",
    "While the experiment is live, coverage can only grow.": (
        "Solange das Experiment läuft, kann die Abdeckung nur wachsen."
    ),
    "Targeting conditions (JSON, MongoDB-style)": "Zielgruppen-Bedingungen (JSON, wie MongoDB)",
    "Empty: every visitor is eligible.": "Leer: Jeder Besucher kommt in Frage.",
    "Layer (optional)": "Ebene (optional)",
    "Share of the layer (%)": "Anteil der Ebene (%)",
    "Experiments in the same layer never share a visitor.": (
        "Experimente derselben Ebene teilen sich nie einen Besucher."
    ),
    "Goals": "Ziele",
    "Exactly one goal is primary: it decides the experiment. Revenue and margin goals listen "
    "to order events.": (
        "Genau ein Ziel ist das Hauptziel: Es entscheidet das Experiment. Umsatz- und "
        "Deckungsbeitragsziele zählen Bestellungen."
    ),
    "Goal {number}": "Ziel {number}",
    "Measures": "Misst",
    "Event (default: the goal's key)": "Ereignis (Standard: der Schlüssel des Ziels)",
    "Primary": "Hauptziel",
    "Add a goal": "Ziel hinzufügen",
    "Analysis": "Auswertung",
    "Segments (comma-separated attributes, at most 5)": (
        "Segmente (Attribute, durch Kommas getrennt, höchstens 5)"
    ),
    "Test": "Test",
    "Sequential: look at any time": "Sequenziell: jederzeit ansehen",
    "Fixed horizon: look once at the end": "Fester Horizont: einmal am Ende ansehen",
    "Open-ended: always valid, no planned size": "Offen: jederzeit gültig, ohne geplante Größe",
    "Smallest effect worth finding (%)": "Kleinster relevanter Effekt (%)",
    "Save": "Speichern",
    "Create draft": "Entwurf anlegen",
    "Draft {key} created.": "Entwurf {key} angelegt.",
    "Changes saved.": "Änderungen gespeichert.",
    "Nothing changed.": "Nichts geändert.",
    # --- install page ---
    "Install": "Einbinden",
    "Install Splitwerk in your shop": "Splitwerk in Ihren Shop einbinden",
    "Everything below points at this server; copy a block with its button.": (
        "Alles hier zeigt auf diesen Server; kopieren Sie einen Block mit seiner Schaltfläche."
    ),
    "1. The snippet on every shop page": "1. Das Snippet auf jeder Shopseite",
    "Put this tag into the <head> of your shop's pages (snippet version {version}). It assigns "
    "visitors in the browser and sends conversions.": (
        "Setzen Sie dieses Tag in den <head> Ihrer Shopseiten (Snippet-Version {version}). Es "
        "teilt Besucher im Browser zu und sendet Konversionen."
    ),
    "snippet embed code": "Einbettungscode des Snippets",
    "Browsers may only call this server from origins it allows: set SPLITWERK_CORS_ORIGINS to "
    "your shop's address.": (
        "Browser dürfen diesen Server nur von erlaubten Ursprüngen aus aufrufen: Setzen Sie "
        "SPLITWERK_CORS_ORIGINS auf die Adresse Ihres Shops."
    ),
    "Allowed now:": "Derzeit erlaubt:",
    "No origin is allowed yet.": "Noch ist kein Ursprung erlaubt.",
    "2. The Python SDK in your shop's back end": "2. Das Python-SDK im Backend Ihres Shops",
    "Install it from the Splitwerk repository:": (
        "Installieren Sie es aus dem Splitwerk-Repository:"
    ),
    "SDK installation": "Installation des SDK",
    "Then assign visitors and send orders with their money:": (
        "Dann teilen Sie Besucher zu und senden Bestellungen mit ihren Beträgen:"
    ),
    "Python SDK code": "Python-SDK-Code",
    "3. An ingest key for orders and refunds": (
        "3. Ein Ingest-Schlüssel für Bestellungen und Erstattungen"
    ),
    "Orders carry money, so they are only accepted with a key that only your back end knows. "
    "Create one and add its SHA-256 to the server's tokens, then restart the server:": (
        "Bestellungen tragen Geldbeträge und werden daher nur mit einem Schlüssel angenommen, "
        "den nur Ihr Backend kennt. Erzeugen Sie einen, tragen Sie seinen SHA-256 in die Tokens "
        "des Servers ein und starten Sie den Server neu:"
    ),
    "ingest key commands": "Befehle für den Ingest-Schlüssel",
    "This development server already has one, in this file:": (
        "Dieser Entwicklungsserver hat schon einen, in dieser Datei:"
    ),
    "4. Try it with the example shop": "4. Mit dem Beispielshop ausprobieren",
    "The repository's example shop runs the demo experiment in both ways, in the browser and in "
    "the back end:": (
        "Der Beispielshop des Repositorys führt das Demo-Experiment auf beide Arten aus, im "
        "Browser und im Backend:"
    ),
    "example shop command": "Befehl für den Beispielshop",
    "Copy": "Kopieren",
    "Copied": "Kopiert",
    # results that never mislead (issue 13)
    "Not enough data yet: a verdict needs {visitors} visitors in each variant and "
    "{conversions} conversions in both together.": (
        "Noch nicht genug Daten: ein Urteil braucht {visitors} Besucher je Variante und "
        "{conversions} Conversions in beiden zusammen."
    ),
    "No relative change: the control's value is not clearly above zero.": (
        "Keine relative Änderung: der Wert der Kontrolle liegt nicht klar über null."
    ),
    "About {missing} more visitors are needed to detect a change of {effect} in {goal}; at "
    "the traffic of the first day that is around {date}.": (
        "Noch etwa {missing} Besucher nötig, um eine Änderung von {effect} bei {goal} zu "
        "erkennen; beim Traffic des ersten Tages etwa am {date}."
    ),
    "Each visitor's total counts at most {cap} in these statistics, so that one huge order "
    "cannot decide; the totals are not capped.": (
        "Der Gesamtwert eines Besuchers zählt in dieser Statistik höchstens mit {cap}, damit "
        "eine einzelne riesige Bestellung nicht entscheidet; die Summen sind nicht gekappt."
    ),
    # the decision card (dashboard/decision_card.py, _decision.html)
    "What to do now": "Was jetzt zu tun ist",
    "No data yet": "Noch keine Daten",
    "{value} conversions": "{value} Conversions",
    "{value} (95 % interval {lower} to {upper})": "{value} (95-%-Intervall {lower} bis {upper})",
    "Investigate the sample ratio alarm": "Den Alarm zur Besucherverteilung untersuchen",
    "The variants did not get the planned shares of visitors, so no figure below can be "
    "trusted until the cause is found.": (
        "Die Varianten haben nicht die geplanten Anteile der Besucher erhalten; keiner der "
        "Werte unten ist verlässlich, bis die Ursache gefunden ist."
    ),
    "Ship {variant}": "{variant} übernehmen",
    "{variant} is conclusively better than the control on {goal}.": (
        "{variant} ist bei {goal} nachweislich besser als die Kontrolle."
    ),
    "Keep {variant}": "{variant} beibehalten",
    "Every challenger is conclusively worse than the control on {goal}.": (
        "Jede Herausforderer-Variante ist bei {goal} nachweislich schlechter als die Kontrolle."
    ),
    "Stop: no effect worth waiting for is left": (
        "Beenden: kein Effekt mehr zu erwarten, der das Warten lohnt"
    ),
    "An effect as large as the minimum effect on {goal} is ruled out or would take "
    "months to show; waiting longer is unlikely to pay.": (
        "Ein Effekt in Höhe des Mindesteffekts bei {goal} ist ausgeschlossen oder bräuchte "
        "Monate, um sichtbar zu werden; längeres Warten lohnt sich kaum."
    ),
    "Keep running: no data yet": "Weiterlaufen lassen: noch keine Daten",
    "Nobody has reached {goal} yet, so there is nothing to compare.": (
        "Noch niemand hat {goal} erreicht, es gibt also nichts zu vergleichen."
    ),
    "Keep running": "Weiterlaufen lassen",
    "The difference on {goal} is not conclusive yet.": (
        "Der Unterschied bei {goal} ist noch nicht eindeutig."
    ),
    "Keep running for about 1 day": "Noch etwa 1 Tag laufen lassen",
    "Keep running for about {days} days": "Noch etwa {days} Tage laufen lassen",
    "The difference on {goal} is not conclusive yet; the forecast needs about that long.": (
        "Der Unterschied bei {goal} ist noch nicht eindeutig; die Prognose braucht etwa so lange."
    ),
    "Extra margin per 1,000 visitors with {variant}": (
        "Mehr Deckungsbeitrag je 1.000 Besucher mit {variant}"
    ),
    "Extra net revenue per 1,000 visitors with {variant}": (
        "Mehr Nettoumsatz je 1.000 Besucher mit {variant}"
    ),
    "Extra conversions per 1,000 visitors with {variant}": (
        "Mehr Conversions je 1.000 Besucher mit {variant}"
    ),
    "Per month at the current traffic": "Pro Monat beim aktuellen Traffic",
    "Chance that {variant} is better": "Chance, dass {variant} besser ist",
    "Expected loss per 1,000 visitors if {variant} is shipped now": (
        "Erwarteter Verlust je 1.000 Besucher, wenn {variant} jetzt übernommen wird"
    ),
    "{amount} per 1,000 visitors · chance {chance}": (
        "{amount} je 1.000 Besucher · Chance {chance}"
    ),
    "Conversion rate ({goal})": "Conversion-Rate ({goal})",
    "{control} control, {rate} {variant}": "{control} Kontrolle, {rate} {variant}",
    "No data yet: the split is checked once visitors are enrolled.": (
        "Noch keine Daten: Die Verteilung wird geprüft, sobald Besucher zugeteilt sind."
    ),
    # archived experiments are read only and can be deleted (views.delete, delete.html)
    "Archived experiments are read only.": "Archivierte Experimente sind schreibgeschützt.",
    "Delete": "Löschen",
    "Only drafts and archived experiments can be deleted.": (
        "Nur Entwürfe und archivierte Experimente können gelöscht werden."
    ),
    "Experiment {key} deleted.": "Experiment {key} gelöscht.",
    "Delete “{name}”?": "„{name}“ löschen?",
    "The experiment, its results and its audit trail are removed for good; the deletion log "
    "keeps who deleted it and when.": (
        "Das Experiment, seine Ergebnisse und sein Protokoll werden endgültig entfernt; das "
        "Löschprotokoll hält fest, wer es wann gelöscht hat."
    ),
    "Yes, delete": "Ja, löschen",
    # forms in plain words (dashboard/messages.py, forms.py, form.html)
    "Enter a percentage from 0 to 100.": "Geben Sie einen Prozentwert von 0 bis 100 ein.",
    "Enter a percentage from 0.01 to 100.": "Geben Sie einen Prozentwert von 0,01 bis 100 ein.",
    "Enter a percentage from 0.1 to 1000.": "Geben Sie einen Prozentwert von 0,1 bis 1000 ein.",
    "Use lowercase letters, digits, - and _ only, starting with a letter or digit "
    "(at most 64 characters).": (
        "Nur Kleinbuchstaben, Ziffern, - und _, beginnend mit einem Buchstaben oder einer "
        "Ziffer (höchstens 64 Zeichen)."
    ),
    "Use letters, digits, - and _ only.": "Nur Buchstaben, Ziffern, - und _.",
    "Please fill in this field.": "Bitte füllen Sie dieses Feld aus.",
    "Enter a number, such as 1 or 2.5.": "Geben Sie eine Zahl ein, etwa 1 oder 2.5.",
    "Enter a weight greater than 0.": "Geben Sie ein Gewicht größer als 0 ein.",
    "Another row already uses this key; each needs its own.": (
        "Eine andere Zeile verwendet diesen Schlüssel schon; jede braucht einen eigenen."
    ),
    "Mark exactly one goal as primary.": "Markieren Sie genau ein Ziel als primär.",
    "Name each segment only once.": "Nennen Sie jedes Segment nur einmal.",
    'Enter a JSON object in braces, such as {"country": "DE"}.': (
        'Geben Sie ein JSON-Objekt in geschweiften Klammern ein, etwa {"country": "DE"}.'
    ),
    'This is not valid JSON, e.g. {"color": "#1b7f3a"}.': (
        'Das ist kein gültiges JSON; gültig ist etwa {"color": "#1b7f3a"}.'
    ),
    "Enter a name of at most 200 characters.": (
        "Geben Sie einen Namen mit höchstens 200 Zeichen ein."
    ),
    "Keep the hypothesis to at most 2,000 characters.": (
        "Die Hypothese darf höchstens 2.000 Zeichen lang sein."
    ),
    "An experiment needs from 2 to 10 variants.": "Ein Experiment braucht 2 bis 10 Varianten.",
    "An experiment can have at most 10 goals.": "Ein Experiment kann höchstens 10 Ziele haben.",
    "Choose at most 5 segments.": "Wählen Sie höchstens 5 Segmente.",
    "Variant {number}: {column}": "Variante {number}: {column}",
    "Goal {number}: {column}": "Ziel {number}: {column}",
    "key": "Schlüssel",
    "weight": "Gewicht",
    "payload": "Payload",
    "measures": "misst",
    "event": "Ereignis",
    "Coverage": "Abdeckung",
    "Targeting conditions": "Zielgruppen-Bedingungen",
    "Layer": "Ebene",
    "Share of the layer": "Anteil der Ebene",
    "Segments": "Segmente",
    "Smallest effect worth finding": "Kleinster lohnender Effekt",
    "Add at least one goal: without one the experiment cannot start.": (
        "Legen Sie mindestens ein Ziel an: Ohne Ziel kann das Experiment nicht starten."
    ),
    "The experiment cannot be saved like this; see the marked fields.": (
        "So lässt sich das Experiment nicht speichern; siehe die markierten Felder."
    ),
    "Enter positive weights to see the split.": (
        "Geben Sie positive Gewichte ein, um die Aufteilung zu sehen."
    ),
    "Another experiment already uses this key.": (
        "Ein anderes Experiment verwendet diesen Schlüssel schon."
    ),
    "This weight is too small next to the others to get even 0.01 % of the traffic.": (
        "Dieses Gewicht ist neben den anderen zu klein, um auch nur 0,01 % des Traffics zu "
        "erhalten."
    ),
    "While the experiment is live only payloads can change; a new phase changes keys and "
    "weights.": (
        "Solange das Experiment läuft, lassen sich nur Payloads ändern; Schlüssel und Gewichte "
        "ändert eine neue Phase."
    ),
    "This cannot change in the experiment's current status.": (
        "Das lässt sich im aktuellen Status des Experiments nicht ändern."
    ),
    "Add a goal and mark it as primary.": "Legen Sie ein Ziel an und markieren Sie es als primär.",
    "While the experiment is live, coverage can only grow: at least {percent}. "
    "A new phase can lower it.": (
        "Solange das Experiment läuft, kann die Abdeckung nur wachsen: mindestens {percent}. "
        "Eine neue Phase kann sie senken."
    ),
    "Not conclusive": "Nicht eindeutig",
    "The experiment stopped before the difference on {goal} became conclusive.": (
        "Das Experiment wurde beendet, bevor der Unterschied bei {goal} eindeutig wurde."
    ),
    "Tick the box to confirm that every count starts again at zero.": (
        "Bestätigen Sie mit dem Häkchen, dass jede Zählung wieder bei null beginnt."
    ),
}
