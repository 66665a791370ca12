# Las palabras alrededor del contenido, en español: un catálogo de Project Fluent
# (https://projectfluent.org), con los mismos mensajes que en.ftl. Cada mensaje puede usar
# { $kicker }, { $name } y { $organization }, las palabras del boletín en este idioma
# (`[newsletter.es]`).

## El idioma

language-name = Español
read-in-language = Leer en español

## Cada número

view-in-browser = Ver en el navegador
learn-more = Más información
learn-more-about = sobre { $title }
via = vía { $source }
why = Usted recibe { $kicker } porque se suscribió al boletín mensual del { $organization }.
unsubscribe = Cancelar la suscripción
unsubscribe-note = Un clic, sin iniciar sesión.
preheader = { "" }
archive-note = Esta es la versión web de { $kicker }, el boletín mensual del { $organization }.

## El formulario de suscripción

form-email = Correo electrónico
form-name = Nombre (opcional)
form-language = Idioma
form-honeypot = Deje este campo vacío
consent = Acepto recibir por correo electrónico { $kicker }, el boletín mensual del { $organization }. Puedo darme de baja en cualquier momento con el enlace que trae cada mensaje.
form-subscribe = Suscribirme

## El mensaje que pide confirmar

confirm-subject = Confirme su suscripción a { $kicker }
confirm-text = Alguien, probablemente usted, pidió recibir { $kicker }, el boletín mensual del { $organization }, en esta dirección. Confírmelo con el botón de abajo. Si no fue usted, ignore este mensaje: no se le enviará nada.
confirm-button = Confirmar la suscripción
confirm-link-label = Confirme su suscripción:
or-open = O abra esta dirección:

## Páginas

page-title = { $title } – { $kicker }
languages-nav = Idiomas
subscribe-title = Suscribirse
subscribe-heading = Suscríbase a { $kicker }
subscribe-lead = { $name }, el boletín mensual del { $organization }, en su bandeja de entrada una vez al mes.
request-too-large = La solicitud es demasiado grande.
check-address = Revise la dirección: { $problem }.
address-empty = está vacía
address-control = tiene un carácter de control (como NUL o un salto de línea)
address-non-ascii = tiene caracteres no ASCII, que todavía no se admiten
address-syntax = no es un correo electrónico válido
address-ip = tiene una dirección IP como dominio; use un nombre de dominio como example.org
address-no-dot = su dominio no tiene punto; use un nombre de dominio completo como example.org, no un nombre local como localhost
too-many-heading = Demasiadas solicitudes
too-many-text = Llegaron demasiadas solicitudes de suscripción desde su red. Inténtelo de nuevo dentro de una hora.
check-inbox-title = Revise su correo
check-inbox-text = Si esta dirección aún no está suscrita, le llegará un mensaje con un enlace de confirmación. Ábralo dentro de { $ttl } para empezar a recibir { $kicker }.
link-expired = Este enlace de confirmación caducó. Pida uno nuevo abajo y ábralo a tiempo.
link-invalid = Este enlace de confirmación no es válido (quizá su programa de correo lo cortó). Pida uno nuevo abajo.
link-outdated = Este enlace de confirmación es anterior al último cambio en la suscripción de esta dirección, así que no cambia nada. Para suscribirse de nuevo, pídalo abajo: se le enviará un enlace nuevo.
confirm-heading = Confirme su suscripción a { $kicker }
confirm-lead = Pulse el botón para empezar a recibir el boletín. Nada cambia hasta que lo haga.
subscribed-title = Suscripción confirmada
subscribed-heading = Ya está suscrito
subscribed-text = Gracias. { $kicker } llegará a esta dirección una vez al mes.
see-archive = Los números anteriores están en el archivo
not-found-title = No encontrado
not-found-text = Aquí no hay nada.
error-title = Error
error-heading = Algo salió mal
error-text = Inténtelo de nuevo en unos minutos.
archive-title = Archivo
archive-empty = Todavía no se ha enviado ningún número.
preview-expired-title = Vista previa caducada
preview-expired-heading = Esta vista previa caducó
preview-expired-text = El enlace «Ver en el navegador» de una copia de prueba funciona durante { $days } días. El equipo puede ver cada número en la consola.
open-console = Abrir la consola
preview-problems-title = Vista previa
preview-problems-heading = El número { $issue } no se puede mostrar ahora
preview-problems-text = { $count ->
    [one] Su carpeta tiene un problema desde que se envió la copia de prueba. Ejecute brief check o abra el número en la consola.
   *[other] Su carpeta tiene { $count } problemas desde que se envió la copia de prueba. Ejecute brief check o abra el número en la consola.
}
unsubscribe-title = Cancelar la suscripción
unsubscribe-heading = ¿Cancelar su suscripción a { $kicker }?
unsubscribe-lead = Pulse el botón para dejar de recibir { $kicker }, el boletín mensual del { $organization }. Nada cambia hasta que lo haga.
unsubscribe-button = Cancelar la suscripción
unsubscribed-title = Suscripción cancelada
unsubscribed-heading = Su suscripción está cancelada
unsubscribed-text = Esta dirección ya no recibirá { $kicker }. Si fue un error, escriba a
switch-title = Idioma
switch-heading = ¿Leer { $kicker } en español?
switch-lead = Pulse el botón para recibir { $kicker } en español a partir del próximo número. Nada cambia hasta que lo haga.
switch-button = Leer en español
switched-heading = { $kicker } llegará en español
switched-text = A partir del próximo número, esta dirección recibirá { $kicker } en español.

## Duraciones ("dentro de 7 días")

duration-days = { $count ->
    [one] un día
   *[other] { $count } días
}
duration-hours = { $count ->
    [one] una hora
   *[other] { $count } horas
}
duration-minutes = { $count ->
    [one] un minuto
   *[other] { $count } minutos
}
