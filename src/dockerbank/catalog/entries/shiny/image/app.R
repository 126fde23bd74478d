# The example application a new deployment starts with: replace it with your own app.R.
library(shiny)
ui <- fluidPage(
  titlePanel("Dockerbank catalog: Shiny"),
  sliderInput("n", "Observations", min = 10, max = 1000, value = 100),
  plotOutput("hist")
)
server <- function(input, output) {
  output$hist <- renderPlot(hist(rnorm(input$n), main = "rnorm(n)"))
}
shinyApp(ui, server)
