"""Every word the console shows, in English and Russian, side by side.

WORDS are the pages' own words (their modules in static/ read them as words.key).  LABELS name
the codes ivr's API answers with (a call's outcome, an agent's state, a
ticket's state...) for people; the API itself keeps the codes.  A test checks
that both languages have every word and every code has a label.
"""

from __future__ import annotations

LANGUAGES = ("en", "ru")

WORDS: dict[str, tuple[str, str]] = {
    "title": ("ivr console", "Консоль ivr"),
    "token": ("Token", "Токен"),
    "sign_in": ("Sign in", "Войти"),
    "sign_out": ("Sign out", "Выйти"),
    "bad_token": ("That token is not valid.", "Этот токен недействителен."),
    "too_many": ("Too many wrong tokens from here: wait a minute and try again.",
                 "Слишком много неверных токенов отсюда: подождите минуту и повторите."),
    "forbidden": ("Your role may not open this page.", "Вашей роли эта страница недоступна."),
    "forbidden_title": ("Not for your role (403)", "Недоступно вашей роли (403)"),
    "your_page": ("Back to your page", "Вернуться на свою страницу"),
    "sign_in_other": ("Sign in with another token", "Войти с другим токеном"),
    "sign_in_how": ("Sign in with the token your administrator gave you.",
                    "Войдите с токеном, который вам выдал администратор."),
    "language": ("Русский", "English"),
    # the pages
    "desk": ("Operator's desk", "Рабочее место оператора"),
    "board": ("Supervisor's board", "Панель старшего специалиста"),
    "office": ("Office", "Офис провайдера"),
    "tickets": ("Engineers' tickets", "Заявки инженеров"),
    "wall": ("Wallboard", "Табло"),
    # the desk
    "caller": ("Caller", "Абонент"),
    "waiting_call": ("Waiting for a call…", "Ожидание звонка…"),
    "recent_calls": ("Recent calls", "Последние звонки"),
    "repeat": ("repeat", "повтор"),
    "open_items": ("Open tickets and complaints", "Открытые заявки и жалобы"),
    "incident_blocks": ("A known incident covers this caller",
                        "Абонента затрагивает известная авария"),
    "escalate": ("Escalate", "Передать инженерам"),
    "file_ticket": ("File ticket", "Оформить заявку"),
    "warn": ("Warn", "Предупредить"),
    "end_abuse": ("End for abuse", "Завершить за грубость"),
    "to_supervisor": ("To supervisor", "Старшему специалисту"),
    "read_back": ("Read numbers back", "Продиктовать номера"),
    "disposition": ("Disposition", "Итог звонка"),
    "save": ("Save", "Сохранить"),
    "seconds_short": ("s", "с"),
    "minutes_short": ("min", "мин"),
    "waited": ("Waited", "Ждал"),
    "on_call": ("On the call", "Разговор идёт"),
    "call_ended": ("call ended", "звонок завершён"),
    "when": ("When", "Когда"),
    "outcome": ("Outcome", "Итог"),
    "wait": ("Wait", "Ожидание"),
    "kind": ("Kind", "Вид"),
    "no_recent": ("No calls in the last 7 days.", "Звонков за последние 7 дней не было."),
    "no_open": ("Nothing open.", "Открытых заявок и жалоб нет."),
    # the board
    "queues": ("Queues", "Очереди"),
    "queue": ("Queue", "Очередь"),
    "waiting": ("Waiting", "Ожидают"),
    "agents": ("Agents", "Операторы"),
    "service_level": ("Service level", "Уровень обслуживания"),
    "now": ("now", "сейчас"),
    "today": ("today", "сегодня"),
    "move": ("Move", "Перевести"),
    "complaint_for_call": ("Complaint for a call", "Жалоба по звонку"),
    "call": ("Call", "Звонок"),
    "text": ("Text", "Текст"),
    "file_complaint": ("File complaint", "Подать жалобу"),
    "complaints": ("Complaints", "Жалобы"),
    "callback": ("callback", "обратный звонок"),
    "callbacks": ("Callbacks pending", "Ожидают обратного звонка"),
    "no_callbacks": ("No callback pending.", "Обратных звонков не ожидается."),
    "place": ("place", "место"),
    "attempts": ("dials", "наборов"),
    # the board and the wall: waits, agents' times, today, the chart of the day
    "oldest": ("Oldest wait", "Дольше всех ждёт"),
    "late": ("late", "сверх нормы"),
    "nobody_waiting": ("nobody waiting", "никто не ждёт"),
    "no_agents": ("no agents", "нет операторов"),
    "today_figures": ("Today", "Сегодня"),
    "answered": ("answered", "отвечено"),
    "abandoned": ("abandoned", "брошено"),
    "moved": ("moved", "переведено"),
    "target": ("target", "цель"),
    "by_interval": ("by 15 minutes", "по 15 минут"),
    "interval": ("Interval", "Интервал"),
    "offered_calls": ("Offered", "Поступило"),
    "within": ("Answered within", "Отвечено за"),
    "share": ("Share", "Доля"),
    "abandoned_calls": ("Abandoned", "Брошено"),
    "share_within": ("share answered within", "доля отвеченных за"),
    "no_calls_today": ("No calls yet today.", "Сегодня звонков ещё не было."),
    "reconnecting": ("Reconnecting to ivr…", "Восстанавливаем связь с ivr…"),
    # the office
    "find_number": ("Find by number", "Найти по номеру"),
    "number": ("Number", "Номер"),
    "find": ("Find", "Найти"),
    "registry": ("Registry", "Реестр"),
    "verify": ("Verify", "Проверить"),
    "incidents": ("Incidents", "Аварии"),
    "open_incident": ("Open incident", "Открыть аварию"),
    "area": ("Area", "Район"),
    "message": ("Message", "Сообщение"),
    "hours": ("Hours", "Часов"),
    "close": ("Close", "Закрыть"),
    "statement": ("Statement", "Отчёт"),
    "offered": ("offered", "поступило"),
    "payable": ("payable", "оплачивается"),
    # the statement's chart ({1} – {2}: its first and last day) and its table
    "chart_name": ("Statement {1} – {2}: calls per day, offered, and of them payable, "
                   "answered late, moved to common and abandoned",
                   "Отчёт за {1} – {2}: звонки по дням, поступившие и из них оплачиваемые, "
                   "отвеченные поздно, переведённые в общую очередь и брошенные"),
    "chart_title": ("Statement {1} – {2}", "Отчёт за {1} – {2}"),
    "offered_is": ("Offered: the whole column, its number on top",
                   "Поступило: весь столбец, число над ним"),
    "calls": ("calls", "звонки"),
    "date": ("Date", "Дата"),
    "col_offered": ("Offered", "Поступило"),
    "col_payable": ("Payable", "Оплачивается"),
    "answered_late": ("Answered late", "Отвечено поздно"),
    "col_moved": ("Moved to common", "Переведено в общую"),
    "col_abandoned": ("Abandoned", "Брошено"),
    "other": ("Other", "Прочие"),
    "col_share": ("Payable share", "Доля оплачиваемых"),
    "total": ("Total", "Итого"),
    "per_day_table": ("Statement per day", "Отчёт по дням"),
    "from": ("From", "С"),
    "to": ("To", "По"),
    "show": ("Show", "Показать"),
    "download_csv": ("Download CSV", "Скачать CSV"),
    "downtime": ("Downtime", "Простой"),
    "seconds": ("Seconds", "Секунд"),
    "show_downtime": ("Show downtime", "Показать простои"),
    "downtime_of": ("Downtime {1} – {2}, the statement's period", "Простои за {1} – {2}, период отчёта"),
    "no_downtime": ("No account had downtime in this period.", "В этот период простоев не было."),
    "claim": ("Claim", "Перерасчёт"),
    "no_claim": ("none filed", "не запрошен"),
    "h": ("h", "ч"),
    "min": ("min", "мин"),
    # a number found: its card
    "number_format": ("A number is digits only, at least 8 of them, beginning with 1 (ticket), "
                      "2 (complaint) or 3 (claim).",
                      "Номер состоит только из цифр, их не меньше 8, первая: 1 (заявка), "
                      "2 (жалоба) или 3 (перерасчёт)."),
    "filed": ("Filed", "Оформлено"),
    "deadline": ("Answer by", "Ответить до"),
    "overdue": ("overdue", "просрочено"),
    "operator": ("Operator", "Оператор"),
    "call_at": ("Call answered", "Звонок принят"),
    "claimed": ("Period claimed", "Период перерасчёта"),
    "history": ("History", "История"),
    "who": ("Who", "Кто"),
    "what": ("What", "Что"),
    "note": ("Note", "Заметка"),
    "no_changes": ("No change since it was filed.", "С момента оформления изменений не было."),
    # the engineers
    "open_tickets": ("Open tickets", "Открытые заявки"),
    "no_tickets": ("No open tickets.", "Открытых заявок нет."),
    "problem": ("Problem", "Проблема"),
    "account": ("Account", "Лицевой счёт"),
    "due": ("Due", "Срок"),
    "state": ("State", "Состояние"),
    "actions": ("Actions", "Действия"),
}

LABELS: dict[str, dict[str, tuple[str, str]]] = {
    "role": {
        "operator": ("operator", "оператор"), "supervisor": ("supervisor", "старший специалист"),
        "office": ("office", "офис"), "engineer": ("engineer", "инженер"),
        "admin": ("admin", "администратор"), "wall": ("wallboard", "табло"),
        "caller": ("caller, by phone", "абонент, по телефону"),   # desk.service.CALLER
    },
    "outcome": {     # judge.OUTCOMES, and the ledger's own
        "answered": ("answered", "отвечен"), "abandoned": ("abandoned", "брошен"),
        "timeout": ("timed out", "истекло ожидание"), "withdrawn": ("withdrawn", "снят с очереди"),
        "empty": ("no agents", "нет операторов"), "transferred": ("transferred", "переведён"),
        "exit_with_key": ("left by a key", "вышел по клавише"),
        "callback": ("called back", "обратный звонок"),
        "unknown_exit": ("left, reason unknown", "вышел, причина неизвестна"),
        "unanswered": ("unanswered", "не отвечен"), "unknown": ("unknown", "неизвестно"),
        "unobserved": ("not observed", "не отслежен"),
    },
    "callback": {    # callbacks/model.State
        "placing": ("being placed", "ставится в очередь"), "waiting": ("waiting", "ожидает"),
        "dialing": ("dialing", "набирается"), "retry": ("retry soon", "повтор скоро"),
    },
    "agent": {       # tracker.AGENT_STATES
        "available": ("available", "свободен"), "ringing": ("ringing", "вызов"),
        "in_call": ("in a call", "разговаривает"), "paused": ("paused", "на паузе"),
        "unavailable": ("unavailable", "недоступен"),
    },
    "kind": {
        "ticket": ("ticket", "заявка"), "complaint": ("complaint", "жалоба"),
        "claim": ("claim", "перерасчёт"),
    },
    "state": {       # a ticket's (desk TICKET_MOVES), a complaint's (COMPLAINT_MOVES), a claim's
        "open": ("open", "открыта"), "in_progress": ("in progress", "в работе"),
        "resolved": ("resolved", "решена"), "closed": ("closed", "закрыта"),
        "received": ("received", "получена"), "forwarded": ("forwarded", "передана"),
        "answered": ("answered", "дан ответ"), "filed": ("filed", "оформлен"),
    },
    # The API's errors on the pages: by their `code` when they have one, else by status.
    "error": {
        "not_in_call": ("The call is no longer with an operator.", "Звонок уже не у оператора."),
        "incident": ("Refused: a known incident covers this caller's area.",
                     "Отказано: в районе абонента известная авария, инженеры уже работают."),
        "warn_first": ("Warn the caller first.", "Сначала предупредите абонента."),
        "never_answered": ("The call was never answered.", "На этот звонок никто не ответил."),
        "state_order": ("That state cannot come next.", "В это состояние сейчас перевести нельзя."),
        "bad_number": ("That number is mistyped (its check digit is wrong).",
                       "Номер набран с ошибкой (не сходится контрольная цифра)."),
        "no_number": ("There is no such number.", "Такого номера нет."),
        "throttled": ("Too many wrong tokens from here: wait and try again.",
                      "Слишком много неверных токенов отсюда: подождите и повторите."),
        "not_yours": ("This is not yours: another operator's call or item.",
                      "Это не ваше: звонок или запись другого оператора."),
    },
    "status": {
        "400": ("The request was not understood.", "Запрос не понят."),
        "401": ("Signed out: sign in again.", "Сеанс закончен: войдите снова."),
        "403": ("Your role may not do this.", "Вашей роли это недоступно."),
        "404": ("Not found.", "Не найдено."),
        "409": ("Refused.", "Отказано."),
        "429": ("Too many wrong tokens from here: wait and try again.",
                "Слишком много неверных токенов отсюда: подождите и повторите."),
        "502": ("The PBX did not do it.", "АТС не выполнила команду."),
        "503": ("The ledger is not answering; try again.", "База звонков не отвечает; повторите."),
    },
    "disposition": {   # calls/service.py DISPOSITIONS
        "resolved": ("resolved", "решено"), "ticket": ("ticket filed", "оформлена заявка"),
        "escalated": ("escalated", "передано инженерам"),
        "incident_informed": ("told of the incident", "сообщено об аварии"),
        "complaint": ("complaint", "жалоба"), "claim": ("claim", "перерасчёт"),
        "abuse_ended": ("ended for abuse", "завершён за грубость"),
    },
}


def words(lang: str) -> dict[str, str]:
    i = LANGUAGES.index(lang)
    return {key: pair[i] for key, pair in WORDS.items()}


def labels(lang: str) -> dict[str, dict[str, str]]:
    i = LANGUAGES.index(lang)
    return {space: {code: pair[i] for code, pair in codes.items()}
            for space, codes in LABELS.items()}
